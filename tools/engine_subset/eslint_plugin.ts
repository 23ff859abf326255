// The engine-subset table (rules.ts) as an ESLint plugin: one ESLint rule per table entry, named
// after its id (`engine-subset/destructuring`), so that a report names the same rule in the lint
// and in the bundle check, and a justified exception can be silenced for that rule alone.
import type { ESLint, Linter, Rule, Scope } from "eslint";
import type * as ESTree from "estree";
import {
  GLOBAL_RULES,
  SCOPE_RULES,
  SYNTAX_RULES,
  allRuleIds,
  type GlobalRule,
  type SyntaxRule,
} from "./rules.ts";

export const PLUGIN_NAME = "engine-subset";

type Ranged = ESTree.Node & { range?: [number, number]; parent?: ESTree.Node | null };

function start(node: ESTree.Node): number {
  return (node as Ranged).range?.[0] ?? 0;
}

function end(node: ESTree.Node): number {
  return (node as Ranged).range?.[1] ?? 0;
}

/** typescript-eslint's scope manager also records type references (`x: Map<K, V>`): those never run. */
function isValueReference(ref: Scope.Reference): boolean {
  return (ref as Scope.Reference & { isValueReference?: boolean }).isValueReference !== false;
}

function isTypeofOperand(id: ESTree.Identifier): boolean {
  const parent = (id as Ranged).parent;
  return parent?.type === "UnaryExpression" && parent.operator === "typeof";
}

function describe(message: string): Rule.RuleMetaData {
  return { type: "problem", docs: { description: message }, schema: [] };
}

function selectorRule(rule: SyntaxRule): Rule.RuleModule {
  return {
    meta: describe(rule.message),
    create(context) {
      return {
        [rule.selector](node: ESTree.Node) {
          context.report({ node, message: rule.message });
        },
      };
    },
  };
}

/** Like ESLint's no-restricted-globals, but type references and `typeof X` are not uses. */
function globalRule(rule: GlobalRule): Rule.RuleModule {
  const names = new Set(rule.names);
  return {
    meta: describe(rule.message),
    create(context) {
      const report = (ref: Scope.Reference): void => {
        if (!isValueReference(ref) || isTypeofOperand(ref.identifier)) return;
        context.report({ node: ref.identifier, message: rule.message, data: { name: ref.identifier.name } });
      };
      return {
        "Program:exit"(program: ESTree.Program) {
          const scope = context.sourceCode.getScope(program);
          // Globals the parser or the config declared (no definition in the source)...
          for (const variable of scope.variables) {
            if (variable.defs.length === 0 && names.has(variable.name)) variable.references.forEach(report);
          }
          // ...and names declared nowhere.
          for (const ref of scope.through) if (names.has(ref.identifier.name)) report(ref);
        },
      };
    },
  };
}

/** A use of a function declaration before it, in the same function (not inside a nested function). */
const hoistingRule: Rule.RuleModule = {
  meta: describe(SCOPE_RULES.hoisting.message),
  create(context) {
    return {
      "Program:exit"() {
        for (const scope of context.sourceCode.scopeManager.scopes) {
          for (const variable of scope.variables) {
            const def = variable.defs.find((d) => d.type === "FunctionName" && d.node.type === "FunctionDeclaration");
            if (def === undefined) continue;
            for (const ref of variable.references) {
              if (!isValueReference(ref)) continue;
              if (start(ref.identifier) >= start(def.node)) continue;
              if (ref.from.variableScope !== variable.scope.variableScope) continue;
              context.report({
                node: ref.identifier,
                message: SCOPE_RULES.hoisting.message,
                data: { name: variable.name },
              });
            }
          }
        }
      },
    };
  },
};

/** A function inside a `for (let ...;;)` loop that captures the loop's variable. */
const loopClosureRule: Rule.RuleModule = {
  meta: describe(SCOPE_RULES.loopClosure.message),
  create(context) {
    return {
      "Program:exit"() {
        for (const scope of context.sourceCode.scopeManager.scopes) {
          if (scope.type !== "for") continue;
          const loop = scope.block;
          if (loop.type !== "ForStatement" || loop.init?.type !== "VariableDeclaration" || loop.init.kind !== "let") {
            continue;
          }
          for (const variable of scope.variables) {
            const reported = new Set<Scope.Scope>();
            for (const ref of variable.references) {
              const fn = ref.from.variableScope;
              if (fn === variable.scope.variableScope || reported.has(fn)) continue;
              if (start(fn.block) < start(loop) || end(fn.block) > end(loop)) continue;
              reported.add(fn);
              context.report({
                node: ref.identifier,
                message: SCOPE_RULES.loopClosure.message,
                data: { name: variable.name },
              });
            }
          }
        }
      },
    };
  },
};

function buildRules(): Record<string, Rule.RuleModule> {
  const rules: Record<string, Rule.RuleModule> = {};
  for (const r of SYNTAX_RULES) rules[r.id] = selectorRule(r);
  for (const g of GLOBAL_RULES) rules[g.id] = globalRule(g);
  rules[SCOPE_RULES.hoisting.id] = hoistingRule;
  rules[SCOPE_RULES.loopClosure.id] = loopClosureRule;
  return rules;
}

export const engineSubsetPlugin: ESLint.Plugin = {
  meta: { name: PLUGIN_NAME },
  rules: buildRules(),
};

/** Every rule of the table as an error: what a firmware block of the config turns on. */
export const firmwareRules: Linter.RulesRecord = Object.fromEntries(
  allRuleIds().map((id) => [`${PLUGIN_NAME}/${id}`, "error"]),
);
