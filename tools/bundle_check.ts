// Checks a built firmware bundle against the engine subset (tools/engine_subset/rules.ts): the
// bundle is what the engines run, bundler helpers included, so this is the last word on what
// ships. Library: checkBundle(code, fileName[, { module }]).
// CLI: tsx tools/bundle_check.ts [--module] <bundle.js>...
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import * as acorn from "acorn";
import esquery from "esquery";
import type { Node as EsNode } from "estree";
import {
  GLOBAL_RULES,
  PARSE_ERROR,
  SCOPE_RULES,
  SYNTAX_RULES,
  formatMessage,
  type SyntaxRule,
} from "./engine_subset/rules.ts";

export interface Violation {
  /** The bundle's name as given to checkBundle. */
  file: string;
  /** The rule's id in the engine-subset table (or "parse-error"). */
  rule: string;
  message: string;
  /** 1-based. */
  line: number;
  /** 1-based, as ESLint and editors count. */
  column: number;
  /** The offending source line (cut around the column when the line is long, as in a minified bundle). */
  source: string;
}

/** An ESTree node as acorn builds it: a type, offsets, a location, and children under any key. */
interface AstNode {
  type: string;
  start: number;
  end: number;
  loc?: { start: { line: number; column: number } } | null;
  [key: string]: unknown;
}

function isNode(value: unknown): value is AstNode {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}

/** The child nodes of a node, in source order, under every key (no visitor-key table to keep up to date). */
function children(node: AstNode): AstNode[] {
  const out: AstNode[] = [];
  for (const key of Object.keys(node)) {
    if (key === "loc" || key === "range") continue;
    const value = node[key];
    if (Array.isArray(value)) {
      for (const item of value) if (isNode(item)) out.push(item);
    } else if (isNode(value)) {
      out.push(value);
    }
  }
  return out;
}

// ---------------------------------------------------------------- selectors

interface CompiledRule {
  rule: SyntaxRule;
  selector: esquery.Selector;
}

const FUNCTION_TYPES = ["FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"];

/**
 * The node types a selector's subject can have, or null for "any": lets the walk try only the
 * selectors that can match a node (the same idea as ESLint's selector dispatch).
 */
function subjectTypes(sel: esquery.Selector): string[] | null {
  switch (sel.type) {
    case "identifier":
      return [sel.value];
    case "class":
      return sel.name.toLowerCase() === "function" ? FUNCTION_TYPES : null;
    case "child":
    case "descendant":
    case "sibling":
    case "adjacent":
      return subjectTypes(sel.right);
    case "matches": {
      const all: string[] = [];
      for (const s of sel.selectors) {
        const types = subjectTypes(s);
        if (types === null) return null;
        all.push(...types);
      }
      return all;
    }
    case "compound": {
      let narrowed: string[] | null = null;
      for (const s of sel.selectors) {
        const types = subjectTypes(s);
        if (types === null) continue;
        narrowed = narrowed === null ? types : narrowed.filter((t) => types.includes(t));
      }
      return narrowed;
    }
    default:
      return null;
  }
}

interface Dispatch {
  byType: Map<string, CompiledRule[]>;
  anyType: CompiledRule[];
}

let dispatch: Dispatch | null = null;

function getDispatch(): Dispatch {
  if (dispatch !== null) return dispatch;
  const byType = new Map<string, CompiledRule[]>();
  const anyType: CompiledRule[] = [];
  for (const rule of SYNTAX_RULES) {
    const compiled = { rule, selector: esquery.parse(rule.selector) };
    const types = subjectTypes(compiled.selector);
    if (types === null) {
      anyType.push(compiled);
      continue;
    }
    for (const t of new Set(types)) {
      const list = byType.get(t) ?? [];
      list.push(compiled);
      byType.set(t, list);
    }
  }
  dispatch = { byType, anyType };
  return dispatch;
}

// ---------------------------------------------------------------- scopes

type BindingKind = "var" | "let" | "const" | "class" | "function" | "param" | "catch" | "self" | "import";

interface Binding {
  kind: BindingKind;
  /** The declaring node: the FunctionDeclaration for a function, the declarator's statement otherwise. */
  decl: AstNode;
  scope: Scope;
  /** The `for (let ...;;)` statement that declares it, for the loop-closure check. */
  loop: AstNode | null;
}

interface Scope {
  parent: Scope | null;
  node: AstNode;
  /** The nearest enclosing function-like scope (itself for a function, a class field or the program). */
  fn: Scope;
  bindings: Map<string, Binding>;
}

interface Reference {
  id: AstNode;
  scope: Scope;
  /** `typeof X`: never throws, so a missing global is fine there. */
  typeofOperand: boolean;
}

function newScope(parent: Scope | null, node: AstNode, functionLike: boolean): Scope {
  const scope = { parent, node, bindings: new Map<string, Binding>() } as Scope;
  scope.fn = functionLike || parent === null ? scope : parent.fn;
  return scope;
}

/**
 * A plain scope analysis of a script: declarations per scope (var and Annex B functions in the
 * function scope, let/const/class/function in their block), and every identifier reference with
 * the scope it occurs in. References are resolved after the walk, so hoisting needs no pre-pass.
 */
class ScopeAnalysis {
  readonly refs: Reference[] = [];

  constructor(program: AstNode) {
    const scope = newScope(null, program, true);
    this.statements(program.body as AstNode[], scope);
  }

  resolve(ref: Reference): Binding | null {
    const name = ref.id.name as string;
    for (let s: Scope | null = ref.scope; s !== null; s = s.parent) {
      const b = s.bindings.get(name);
      if (b !== undefined) return b;
    }
    return null;
  }

  private declare(scope: Scope, name: string, kind: BindingKind, decl: AstNode, loop: AstNode | null = null): void {
    if (!scope.bindings.has(name)) scope.bindings.set(name, { kind, decl, scope, loop });
  }

  private declarePattern(pattern: AstNode, scope: Scope, kind: BindingKind, decl: AstNode, loop: AstNode | null = null): void {
    switch (pattern.type) {
      case "Identifier":
        this.declare(scope, pattern.name as string, kind, decl, loop);
        break;
      case "ObjectPattern":
        for (const p of pattern.properties as AstNode[]) {
          this.declarePattern(p.type === "RestElement" ? (p.argument as AstNode) : (p.value as AstNode), scope, kind, decl, loop);
        }
        break;
      case "ArrayPattern":
        for (const e of pattern.elements as (AstNode | null)[]) if (e !== null) this.declarePattern(e, scope, kind, decl, loop);
        break;
      case "RestElement":
        this.declarePattern(pattern.argument as AstNode, scope, kind, decl, loop);
        break;
      case "AssignmentPattern":
        this.declarePattern(pattern.left as AstNode, scope, kind, decl, loop);
        break;
      default:
        break;
    }
  }

  private statements(list: AstNode[], scope: Scope): void {
    for (const s of list) this.visit(s, scope);
  }

  private variables(decl: AstNode, scope: Scope, loop: AstNode | null): void {
    const kind = decl.kind as string;
    const target = kind === "var" ? scope.fn : scope;
    const bindingKind: BindingKind = kind === "var" ? "var" : kind === "let" ? "let" : "const";
    for (const d of decl.declarations as AstNode[]) {
      this.declarePattern(d.id as AstNode, target, bindingKind, decl, bindingKind === "let" ? loop : null);
      this.pattern(d.id as AstNode, scope, false);
      if (isNode(d.init)) this.visit(d.init, scope);
    }
  }

  /** Walks a pattern: in a declaration its names are bindings; in an assignment they are references. */
  private pattern(node: AstNode, scope: Scope, assigning: boolean): void {
    switch (node.type) {
      case "Identifier":
        if (assigning) this.refs.push({ id: node, scope, typeofOperand: false });
        break;
      case "ObjectPattern":
        for (const p of node.properties as AstNode[]) {
          if (p.type === "RestElement") {
            this.pattern(p.argument as AstNode, scope, assigning);
          } else {
            if (p.computed === true) this.visit(p.key as AstNode, scope);
            this.pattern(p.value as AstNode, scope, assigning);
          }
        }
        break;
      case "ArrayPattern":
        for (const e of node.elements as (AstNode | null)[]) if (e !== null) this.pattern(e, scope, assigning);
        break;
      case "RestElement":
        this.pattern(node.argument as AstNode, scope, assigning);
        break;
      case "AssignmentPattern":
        this.pattern(node.left as AstNode, scope, assigning);
        this.visit(node.right as AstNode, scope);
        break;
      default:
        this.visit(node, scope);
    }
  }

  private fn(node: AstNode, outer: Scope): void {
    const scope = newScope(outer, node, true);
    if (node.type === "FunctionExpression" && isNode(node.id)) this.declare(scope, node.id.name as string, "self", node);
    for (const p of node.params as AstNode[]) {
      this.declarePattern(p, scope, "param", node);
      this.pattern(p, scope, false);
    }
    const body = node.body as AstNode;
    if (body.type === "BlockStatement") this.statements(body.body as AstNode[], scope);
    else this.visit(body, scope);
  }

  private cls(node: AstNode, outer: Scope): void {
    if (isNode(node.superClass)) this.visit(node.superClass, outer);
    const scope = newScope(outer, node, false);
    if (node.type === "ClassExpression" && isNode(node.id)) this.declare(scope, node.id.name as string, "self", node);
    for (const m of (node.body as AstNode).body as AstNode[]) {
      if (m.computed === true) this.visit(m.key as AstNode, scope);
      if (m.type === "MethodDefinition") {
        this.fn(m.value as AstNode, scope);
      } else if (m.type === "PropertyDefinition" && isNode(m.value)) {
        // A field initialiser runs like a method body, at construction (or class definition).
        this.visit(m.value, newScope(scope, m, true));
      } else if (m.type === "StaticBlock") {
        this.statements(m.body as AstNode[], newScope(scope, m, true));
      }
    }
  }

  private visit(node: AstNode, scope: Scope): void {
    switch (node.type) {
      case "Identifier":
        this.refs.push({ id: node, scope, typeofOperand: false });
        return;
      case "FunctionDeclaration": {
        if (isNode(node.id)) {
          const name = node.id.name as string;
          this.declare(scope, name, "function", node);
          // Annex B: in a sloppy script a function declared in a block is also a var of the function.
          if (scope.fn !== scope) this.declare(scope.fn, name, "function", node);
        }
        this.fn(node, scope);
        return;
      }
      case "FunctionExpression":
      case "ArrowFunctionExpression":
        this.fn(node, scope);
        return;
      case "ClassDeclaration":
        if (isNode(node.id)) this.declare(scope, node.id.name as string, "class", node);
        this.cls(node, scope);
        return;
      case "ImportDeclaration":
        for (const spec of node.specifiers as AstNode[]) {
          this.declare(scope, (spec.local as AstNode).name as string, "import", node);
        }
        return;
      case "ExportNamedDeclaration":
        if (isNode(node.declaration)) this.visit(node.declaration, scope);
        else if (!isNode(node.source)) {
          for (const spec of node.specifiers as AstNode[]) this.visit(spec.local as AstNode, scope);
        }
        return;
      case "ExportDefaultDeclaration":
        this.visit(node.declaration as AstNode, scope);
        return;
      case "ExportAllDeclaration":
        return;
      case "ClassExpression":
        this.cls(node, scope);
        return;
      case "VariableDeclaration":
        this.variables(node, scope, null);
        return;
      case "BlockStatement":
        this.statements(node.body as AstNode[], newScope(scope, node, false));
        return;
      case "ForStatement": {
        const head = newScope(scope, node, false);
        if (isNode(node.init)) {
          if (node.init.type === "VariableDeclaration") this.variables(node.init, head, node);
          else this.visit(node.init, head);
        }
        if (isNode(node.test)) this.visit(node.test, head);
        if (isNode(node.update)) this.visit(node.update, head);
        this.visit(node.body as AstNode, head);
        return;
      }
      case "ForInStatement":
      case "ForOfStatement": {
        const head = newScope(scope, node, false);
        const left = node.left as AstNode;
        if (left.type === "VariableDeclaration") this.variables(left, head, null);
        else this.pattern(left, head, true);
        this.visit(node.right as AstNode, head);
        this.visit(node.body as AstNode, head);
        return;
      }
      case "SwitchStatement": {
        this.visit(node.discriminant as AstNode, scope);
        const inner = newScope(scope, node, false);
        for (const c of node.cases as AstNode[]) {
          if (isNode(c.test)) this.visit(c.test, inner);
          this.statements(c.consequent as AstNode[], inner);
        }
        return;
      }
      case "CatchClause": {
        const inner = newScope(scope, node, false);
        if (isNode(node.param)) {
          this.declarePattern(node.param, inner, "catch", node);
          this.pattern(node.param, inner, false);
        }
        this.visit(node.body as AstNode, inner);
        return;
      }
      case "AssignmentExpression":
        this.pattern(node.left as AstNode, scope, true);
        this.visit(node.right as AstNode, scope);
        return;
      case "UnaryExpression":
        if (node.operator === "typeof" && isNode(node.argument) && node.argument.type === "Identifier") {
          this.refs.push({ id: node.argument, scope, typeofOperand: true });
          return;
        }
        break;
      case "MemberExpression":
        this.visit(node.object as AstNode, scope);
        if (node.computed === true) this.visit(node.property as AstNode, scope);
        return;
      case "Property":
        if (node.computed === true) this.visit(node.key as AstNode, scope);
        this.visit(node.value as AstNode, scope);
        return;
      case "LabeledStatement":
        this.visit(node.body as AstNode, scope);
        return;
      case "BreakStatement":
      case "ContinueStatement":
      case "MetaProperty":
      case "PrivateIdentifier":
        return;
      default:
        break;
    }
    for (const child of children(node)) this.visit(child, scope);
  }
}

// ---------------------------------------------------------------- the check

function sourceExcerpt(lineText: string, column: number): string {
  const max = 200;
  if (lineText.length <= max) return lineText;
  const from = Math.max(0, column - 80);
  const to = Math.min(lineText.length, from + max);
  return (from > 0 ? "..." : "") + lineText.slice(from, to) + (to < lineText.length ? "..." : "");
}

export interface CheckOptions {
  /**
   * Parse as an ES module (a bundle whose engine-provided imports stay imports, as for Moddable).
   * Default: a plain script, as Espruino and xsnap evaluate it, where `import`/`export` do not parse.
   */
  module?: boolean;
}

/** Checks one bundle; returns its violations sorted by position (an empty list when it is clean). */
export function checkBundle(code: string, fileName: string, options: CheckOptions = {}): Violation[] {
  const lines = code.split(/\r\n|\r|\n/);
  const at = (rule: string, message: string, line: number, column0: number): Violation => ({
    file: fileName,
    rule,
    message,
    line,
    column: column0 + 1,
    source: sourceExcerpt(lines[line - 1] ?? "", column0),
  });

  let program: AstNode;
  try {
    program = acorn.parse(code, {
      ecmaVersion: "latest",
      sourceType: options.module === true ? "module" : "script",
      locations: true,
      allowHashBang: true,
    }) as unknown as AstNode;
  } catch (err) {
    const e = err as { message?: string; loc?: { line: number; column: number } };
    const line = e.loc?.line ?? 1;
    const column = e.loc?.column ?? 0;
    const text = (e.message ?? String(err)).replace(/ \(\d+:\d+\)$/, "");
    return [at(PARSE_ERROR.id, formatMessage(PARSE_ERROR.message, text), line, column)];
  }

  const out: Violation[] = [];
  const report = (rule: string, message: string, node: AstNode): void => {
    const pos = node.loc?.start ?? { line: 1, column: 0 };
    out.push(at(rule, message, pos.line, pos.column));
  };

  // Selectors, tried on every node with its ancestry (parent first, as esquery expects).
  const { byType, anyType } = getDispatch();
  const ancestry: AstNode[] = [];
  const walk = (node: AstNode): void => {
    const candidates = byType.get(node.type);
    for (const list of candidates === undefined ? [anyType] : [candidates, anyType]) {
      for (const c of list) {
        if (esquery.matches(node as unknown as EsNode, c.selector, ancestry as unknown as EsNode[])) {
          report(c.rule.id, c.rule.message, node);
        }
      }
    }
    ancestry.unshift(node);
    for (const child of children(node)) walk(child);
    ancestry.shift();
  };
  walk(program);

  // Scope checks: missing globals, use before a function declaration, loop closures.
  const analysis = new ScopeAnalysis(program);
  const globalRule = new Map<string, (typeof GLOBAL_RULES)[number]>();
  for (const g of GLOBAL_RULES) for (const name of g.names) globalRule.set(name, g);
  const closures = new Set<string>();
  for (const ref of analysis.refs) {
    const name = ref.id.name as string;
    const binding = analysis.resolve(ref);
    if (binding === null) {
      const g = globalRule.get(name);
      if (g !== undefined && !ref.typeofOperand) report(g.id, formatMessage(g.message, name), ref.id);
      continue;
    }
    if (binding.kind === "function" && ref.id.start < binding.decl.start && ref.scope.fn === binding.scope.fn) {
      report(SCOPE_RULES.hoisting.id, formatMessage(SCOPE_RULES.hoisting.message, name), ref.id);
    }
    const loop = binding.loop;
    if (loop !== null && ref.scope.fn !== binding.scope.fn) {
      const fnNode = ref.scope.fn.node;
      const key = `${fnNode.start}:${name}`;
      if (fnNode.start >= loop.start && fnNode.end <= loop.end && !closures.has(key)) {
        closures.add(key);
        report(SCOPE_RULES.loopClosure.id, formatMessage(SCOPE_RULES.loopClosure.message, name), ref.id);
      }
    }
  }

  out.sort((a, b) => a.line - b.line || a.column - b.column || a.rule.localeCompare(b.rule));
  return out;
}

// ---------------------------------------------------------------- CLI

function main(args: string[]): number {
  const module = args.includes("--module");
  const files = args.filter((a) => a !== "--module");
  if (files.length === 0) {
    console.error("usage: tsx tools/bundle_check.ts [--module] <bundle.js>...");
    return 2;
  }
  let failed = false;
  for (const file of files) {
    let code: string;
    try {
      code = readFileSync(file, "utf8");
    } catch (err) {
      console.error(`${file}: cannot read: ${(err as Error).message}`);
      failed = true;
      continue;
    }
    const violations = checkBundle(code, file, { module });
    if (violations.length === 0) {
      console.log(`bundle check: ${file} ok (${Buffer.byteLength(code)} bytes)`);
      continue;
    }
    failed = true;
    for (const v of violations) {
      console.log(`${v.file}:${v.line}:${v.column} ${v.rule} ${v.message}`);
      console.log(`    ${v.source.trim()}`);
    }
    console.log(`bundle check: ${file}: ${violations.length} violation(s)`);
  }
  return failed ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
