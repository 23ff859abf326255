// The engine subset as one table: what Espruino 2v29 lacks (see ENGINES.md), each fact once, with
// the way to detect it and the message that says what to write instead. Two readers: the ESLint
// plugin (eslint_plugin.ts) on the TypeScript source of firmware, and the bundle checker
// (../bundle_check.ts) on each built bundle, so a fact added here is enforced in both places.
//
// Three kinds of entry:
// - SYNTAX_RULES: an esquery selector (the ESLint selector language) over ESTree. Every selector
//   must match on both typescript-eslint's AST of TS source and acorn's AST of a JS bundle, so it
//   only names ESTree node types; TS-only node types may appear inside `:not(...)` guards, where
//   on a JS AST they simply never match.
// - GLOBAL_RULES: names of globals Espruino (or XS under xsnap) lacks; a reference counts only when
//   the name is bound nowhere in an enclosing scope. `typeof X` is allowed (it never throws).
// - SCOPE_RULES: checks that need scope analysis (hoisting, loop closures); each reader
//   implements them over its own scope analysis.
// `{{name}}` in a global or scope message is replaced by the name that was found.

export interface SyntaxRule {
  readonly id: string;
  readonly selector: string;
  readonly message: string;
}

export interface GlobalRule {
  readonly id: string;
  readonly names: readonly string[];
  readonly message: string;
}

export interface ScopeRule {
  readonly id: string;
  readonly message: string;
}

/**
 * Nodes whose parameters are only types (function types, overload and abstract signatures,
 * `declare function`): a rest parameter or a pattern there never reaches the bundle.
 */
const TYPE_ONLY_PARENTS = [
  "TSFunctionType",
  "TSConstructorType",
  "TSMethodSignature",
  "TSCallSignatureDeclaration",
  "TSConstructSignatureDeclaration",
  "TSDeclareFunction",
  "TSEmptyBodyFunctionExpression",
];
const NOT_IN_TYPES = `:not(${TYPE_ONLY_PARENTS.map((t) => `${t} *`).join(", ")})`;

function oneOf(names: readonly string[]): string {
  return `/^(${names.join("|")})$/`;
}

/** `Object.member`, also written `Object["member"]`, whether called or not. */
function staticMember(object: string, members: readonly string[]): string {
  const obj = object.startsWith("/") ? object : `"${object}"`;
  return [
    `MemberExpression[computed=false][object.type="Identifier"][object.name=${obj}][property.name=${oneOf(members)}]`,
    `MemberExpression[computed=true][object.type="Identifier"][object.name=${obj}][property.value=${oneOf(members)}]`,
  ].join(", ");
}

/**
 * A call of `anything.method(...)`: without types (and in a bundle there are none) the receiver
 * is unknown, so the method name alone decides. Only calls count, so that a plain data field
 * with the same name (`event.at`) is not taken for the method.
 */
function methodCall(methods: readonly string[]): string {
  return [
    `CallExpression > MemberExpression.callee[computed=false][property.name=${oneOf(methods)}]`,
    `CallExpression > MemberExpression.callee[computed=true][property.value=${oneOf(methods)}]`,
  ].join(", ");
}

const BUILTIN_CLASSES = [
  "Error",
  "EvalError",
  "RangeError",
  "ReferenceError",
  "SyntaxError",
  "TypeError",
  "URIError",
  "AggregateError",
  "Array",
  "Map",
  "Set",
  "WeakMap",
  "WeakSet",
  "Promise",
  "RegExp",
  "Date",
  "Function",
  "String",
  "Number",
  "Boolean",
  "ArrayBuffer",
  "DataView",
  "Int8Array",
  "Uint8Array",
  "Uint8ClampedArray",
  "Int16Array",
  "Uint16Array",
  "Int32Array",
  "Uint32Array",
  "Float32Array",
  "Float64Array",
];

const TYPED_ARRAYS =
  "/^(Int8Array|Uint8Array|Uint8ClampedArray|Int16Array|Uint16Array|Int32Array|Uint32Array|Float32Array|Float64Array)$/";

/** `undefined`, `null` or `void 0` as an argument: the same as leaving it out. */
const ABSENT_SECOND_ARG =
  ':not([arguments.1.type="Literal"][arguments.1.raw="null"]):not([arguments.1.type="Identifier"][arguments.1.name="undefined"]):not([arguments.1.type="UnaryExpression"][arguments.1.operator="void"])';

export const SYNTAX_RULES: readonly SyntaxRule[] = [
  // ---- syntax
  {
    id: "destructuring",
    selector: `:matches(ObjectPattern, ArrayPattern)${NOT_IN_TYPES}`,
    message:
      "Espruino has no destructuring (declarations, parameters, assignments, catch, for-of heads): read the fields one by one (`const a = o.a;`).",
  },
  {
    id: "spread",
    selector: "SpreadElement",
    message:
      "Espruino has no spread `...x` (array, call or object spread): use `concat`, `fn.apply(null, args)`, `Object.assign({}, o)` or a loop.",
  },
  {
    id: "rest",
    selector: `RestElement${NOT_IN_TYPES}`,
    message:
      "Espruino has no rest elements or rest parameters `...args`: take an array parameter, or read `arguments`.",
  },
  {
    id: "default-param",
    selector: ":function > AssignmentPattern, TSParameterProperty > AssignmentPattern",
    message:
      "Espruino has no default parameter values: declare the parameter plain and write `if (x === undefined) x = ...;` in the body.",
  },
  {
    id: "computed-key",
    selector:
      "ObjectExpression > Property[computed=true], :matches(MethodDefinition, PropertyDefinition)[computed=true]",
    message:
      "Espruino has no computed keys (`{[k]: v}`, `[k]() {}` in a class): create the object, then assign `o[k] = v;`.",
  },
  {
    id: "optional-chaining",
    selector: "ChainExpression, OptionalMemberExpression, OptionalCallExpression",
    message:
      "Espruino has no optional chaining `?.`: test explicitly (`o !== undefined && o !== null ? o.x : undefined`); `??` is fine.",
  },
  {
    id: "logical-assignment",
    selector:
      'AssignmentExpression[operator="??="], AssignmentExpression[operator="||="], AssignmentExpression[operator="&&="]',
    message:
      "Espruino has no logical assignment `??=`, `||=`, `&&=`: write `if (x === undefined || x === null) x = v;` (or `x = x ?? v;`).",
  },
  {
    id: "exponent",
    selector: 'BinaryExpression[operator="**"], AssignmentExpression[operator="**="]',
    message: "Espruino has no `**` or `**=`: use `Math.pow(a, b)`.",
  },
  {
    id: "async",
    selector: ":function[async=true]",
    message:
      "Espruino has no `async` functions: the firmware is callbacks, timers and explicit state machines.",
  },
  {
    id: "await",
    selector: "AwaitExpression",
    message: "Espruino has no `await`: pass a callback, or continue in a state machine step.",
  },
  {
    id: "for-await",
    selector: "ForOfStatement[await=true]",
    message: "Espruino has no `for await`: iterate an array, driven by callbacks.",
  },
  {
    id: "generator",
    selector: ":function[generator=true]",
    message: "Espruino has no generators (`function*`, `yield`): write an explicit state machine or return an array.",
  },
  {
    id: "tagged-template",
    selector: "TaggedTemplateExpression",
    message:
      "Espruino has no tagged templates (`` tag`...` ``, `String.raw`): call a function with plain arguments; untagged templates are fine.",
  },
  {
    id: "labelled-statement",
    selector: "LabeledStatement",
    message:
      "Espruino has no labelled statements (`outer: for ...` with `break outer`): use a flag, or move the loops into a function and `return`.",
  },
  {
    id: "private-member",
    selector: ":matches(PropertyDefinition, MethodDefinition, AccessorProperty) > PrivateIdentifier.key",
    message: "Espruino has no private `#x` members: use a leading underscore (`_x`), or TypeScript's `private`.",
  },
  {
    id: "static-block",
    selector: "StaticBlock",
    message: "Espruino has no class `static { }` blocks: initialise after the class declaration.",
  },
  {
    id: "auto-accessor",
    selector: "AccessorProperty",
    message: "`accessor` fields compile to private fields and WeakMaps, which Espruino lacks: write a plain field.",
  },
  {
    id: "decorator",
    selector: "Decorator",
    message: "Decorators compile to helpers that Espruino cannot run (Reflect, Symbol metadata): call the function explicitly.",
  },
  {
    id: "using-declaration",
    selector: 'VariableDeclaration[kind="using"], VariableDeclaration[kind="await using"]',
    message: "`using` declarations need Symbol.dispose, which Espruino lacks: call `close()` in a `finally`.",
  },
  {
    id: "extends-builtin",
    selector: `:matches(ClassDeclaration, ClassExpression) > Identifier.superClass[name=${oneOf(BUILTIN_CLASSES)}]`,
    message:
      "Espruino cannot subclass built-ins (`extends Error`, `Array`, `Map`, `Promise`, typed arrays...): make errors plain objects or codes, and wrap collections in a class that holds one.",
  },
  {
    id: "regex",
    selector: 'Literal[regex], NewExpression[callee.name="RegExp"], CallExpression[callee.name="RegExp"]',
    message:
      "Avoid regular expressions in firmware: Espruino's RegExp has no lookaround, no `{n}` quantifiers and no named groups; scan the string with charCodeAt.",
  },
  {
    id: "bigint-literal",
    selector: "Literal[bigint]",
    message: "Espruino has no BigInt (`123n`): keep a 64-bit value as two 32-bit halves.",
  },
  {
    id: "numeric-separator",
    selector: "Literal[raw=/^[0-9.][0-9A-Za-z_.]*_/]",
    message: "Numeric separators (`1_000`) are ES2021 and not known to parse on Espruino: write the digits plain.",
  },
  {
    id: "optional-catch-binding",
    selector: "CatchClause[param=null]",
    message:
      "Espruino's parser expects `catch (e)` with a name (optional catch binding `catch {` is ES2019 and not known to parse there): name the error, even if unused.",
  },
  {
    id: "import-meta",
    selector: 'MetaProperty[meta.name="import"]',
    message: "`import.meta` does not exist in a firmware bundle (a plain script): pass what you need through the platform.",
  },
  {
    id: "dynamic-import",
    selector: "ImportExpression",
    message: "Dynamic `import()` does not exist on Espruino (a plain script, `require` only): import statically.",
  },
  {
    id: "new-target",
    selector: 'MetaProperty[meta.name="new"]',
    message: "Espruino has no `new.target`: pass an explicit flag.",
  },
  {
    id: "for-of-iterator",
    selector:
      'ForOfStatement > CallExpression.right[callee.type="MemberExpression"][callee.property.name=/^(entries|keys|values)$/]:not([callee.object.name="Object"])',
    message:
      "Espruino's `for...of` walks arrays, strings and typed arrays only (no iterator protocol): loop over indices, or over `Object.keys(o)`.",
  },
  // ---- library members
  {
    id: "array-from",
    selector: staticMember("Array", ["from"]),
    message: "Espruino has no `Array.from`: build the array with a loop (`for (let i = 0; i < n; i++) out.push(...)`).",
  },
  {
    id: "array-of",
    selector: staticMember("Array", ["of"]),
    message: "Espruino has no `Array.of`: use an array literal.",
  },
  {
    id: "typed-array-from",
    selector: staticMember(TYPED_ARRAYS, ["from", "of"]),
    message: "Espruino has no `Uint8Array.from` / `.of` (any typed array): `const a = new Uint8Array(n); a.set(values);`.",
  },
  {
    id: "object-freeze",
    selector: staticMember("Object", ["freeze", "isFrozen"]),
    message: "Espruino has no `Object.freeze`: leave the object as is and mark it `readonly` / `as const` in TypeScript.",
  },
  {
    id: "object-seal",
    selector: staticMember("Object", ["seal", "isSealed", "preventExtensions"]),
    message: "Espruino has no `Object.seal` / `preventExtensions`: leave the object as is.",
  },
  {
    id: "object-from-entries",
    selector: staticMember("Object", ["fromEntries"]),
    message: "Espruino has no `Object.fromEntries`: fill an object in a loop.",
  },
  {
    id: "object-symbols",
    selector: staticMember("Object", ["getOwnPropertySymbols"]),
    message: "Espruino has no Symbol, so no `Object.getOwnPropertySymbols` (bundlers' spread helpers use it): copy with a `for...in` loop or `Object.assign`.",
  },
  {
    id: "math-imul",
    selector: staticMember("Math", ["imul"]),
    message: "Espruino has no `Math.imul`: multiply in 16-bit halves (`((a * (b >>> 16)) << 16) + a * (b & 0xffff)) | 0`).",
  },
  {
    id: "math-trunc",
    selector: staticMember("Math", ["trunc"]),
    message: "Espruino has no `Math.trunc`: `x < 0 ? Math.ceil(x) : Math.floor(x)` (or `x | 0` for 32-bit values).",
  },
  {
    id: "math-clz32",
    selector: staticMember("Math", ["clz32"]),
    message: "Espruino has no `Math.clz32`: count the leading zero bits with a shift loop.",
  },
  {
    id: "math-log2",
    selector: staticMember("Math", ["log2"]),
    message: "Espruino has no `Math.log2`: `Math.log(x) / Math.LN2`.",
  },
  {
    id: "math-hypot",
    selector: staticMember("Math", ["hypot"]),
    message: "Espruino has no `Math.hypot`: `Math.sqrt(x * x + y * y)`.",
  },
  {
    id: "math-es2015",
    selector: staticMember("Math", [
      "log10",
      "log1p",
      "expm1",
      "cbrt",
      "fround",
      "sinh",
      "cosh",
      "tanh",
      "asinh",
      "acosh",
      "atanh",
    ]),
    message:
      "Espruino's Math has abs, acos, asin, atan, atan2, ceil, cos, exp, floor, log, max, min, pow, random, round, sign, sin, sqrt, tan only: derive the others from `Math.log`, `Math.exp` and `Math.pow`.",
  },
  {
    id: "number-is-integer",
    selector: staticMember("Number", ["isInteger", "isSafeInteger"]),
    message: "Espruino has no `Number.isInteger` / `isSafeInteger`: `typeof x === \"number\" && isFinite(x) && Math.floor(x) === x`.",
  },
  {
    id: "number-is-nan",
    selector: staticMember("Number", ["isNaN"]),
    message: "Espruino has no `Number.isNaN`: `x !== x` (or the global `isNaN` for a number).",
  },
  {
    id: "number-constants",
    selector: staticMember("Number", ["EPSILON", "MAX_SAFE_INTEGER", "MIN_SAFE_INTEGER"]),
    message:
      "Espruino has no `Number.EPSILON` / `MAX_SAFE_INTEGER` / `MIN_SAFE_INTEGER`: declare a named constant (9007199254740991 = 2^53 - 1).",
  },
  {
    id: "promise-combinators",
    selector: staticMember("Promise", ["race", "allSettled", "any", "withResolvers", "try"]),
    message: "Espruino's Promise has only `then`, `catch`, `all`, `resolve` and `reject` (and the firmware uses callbacks).",
  },
  {
    id: "promise-finally",
    selector: methodCall(["finally"]),
    message: "Espruino's Promise has no `finally`: handle both outcomes in `then(ok, fail)`.",
  },
  {
    id: "array-flat",
    selector: methodCall(["flat", "flatMap"]),
    message: "Espruino arrays have no `flat` / `flatMap`: concatenate in a loop.",
  },
  {
    id: "array-at",
    selector: methodCall(["at"]),
    message: "Espruino has no `.at()`: index explicitly (`a[a.length - 1]`).",
  },
  {
    id: "array-last-index-of",
    selector: methodCall(["lastIndexOf"]),
    message: "Espruino arrays have no `lastIndexOf`: loop down from the end.",
  },
  {
    id: "array-reduce-right",
    selector: methodCall(["reduceRight"]),
    message: "Espruino arrays have no `reduceRight`: loop down from the end.",
  },
  {
    id: "string-replace-all",
    selector: methodCall(["replaceAll"]),
    message: "Espruino strings have no `replaceAll`: `s.split(a).join(b)`.",
  },
  {
    id: "json-replacer",
    selector: `CallExpression[callee.type="MemberExpression"][callee.object.name="JSON"][callee.property.name="stringify"][arguments.length>=2]${ABSENT_SECOND_ARG}`,
    message: "Espruino ignores a `JSON.stringify` replacer without a word: transform the value before stringifying.",
  },
  {
    id: "json-reviver",
    selector:
      'CallExpression[callee.type="MemberExpression"][callee.object.name="JSON"][callee.property.name="parse"][arguments.length>=2]',
    message: "Espruino ignores a `JSON.parse` reviver without a word: transform the parsed value afterwards.",
  },
];

export const GLOBAL_RULES: readonly GlobalRule[] = [
  {
    id: "map-set",
    names: ["Map", "Set", "WeakMap", "WeakSet"],
    message: "Espruino has no `{{name}}`: use a plain object with string keys, or an array.",
  },
  {
    id: "weak-ref",
    names: ["WeakRef", "FinalizationRegistry"],
    message: "Espruino has no `{{name}}`: hold the reference and release it explicitly (`close()`).",
  },
  {
    id: "symbol",
    names: ["Symbol"],
    message: "Espruino has no `Symbol`: use string keys.",
  },
  {
    id: "proxy-reflect",
    names: ["Proxy", "Reflect"],
    message: "Espruino has no `{{name}}`: write the object and its methods out explicitly.",
  },
  {
    id: "bigint",
    names: ["BigInt", "BigInt64Array", "BigUint64Array"],
    message: "Espruino has no `{{name}}`: keep a 64-bit value as two 32-bit halves (e.g. in a Uint32Array).",
  },
  {
    id: "text-codec",
    names: ["TextEncoder", "TextDecoder"],
    message: "Espruino has no `{{name}}`: encode / decode UTF-8 with an explicit loop over char codes.",
  },
  {
    id: "microtask",
    names: ["queueMicrotask", "setImmediate"],
    message: "Espruino has no `{{name}}`: schedule through the platform's timers (`setTimeout(cb, 0)`).",
  },
  {
    id: "structured-clone",
    names: ["structuredClone"],
    message: "Espruino has no `structuredClone`: copy the fields explicitly.",
  },
  {
    id: "base64-global",
    names: ["atob", "btoa"],
    message:
      "`{{name}}` exists on Espruino but not in XS under xsnap (which has `Base64`): use the firmware's own base64 routine.",
  },
  {
    id: "node-buffer",
    names: ["Buffer"],
    message: "`Buffer` is Node's: the firmware uses Uint8Array.",
  },
  {
    id: "shared-memory",
    names: ["SharedArrayBuffer", "Atomics"],
    message: "Espruino has no `{{name}}` (one thread): use an ArrayBuffer.",
  },
  {
    id: "intl",
    names: ["Intl"],
    message: "Espruino has no `Intl`: format numbers and dates by hand.",
  },
];

export const SCOPE_RULES = {
  hoisting: {
    id: "hoisting",
    message:
      "Espruino does not hoist function declarations: `{{name}}` is used here before its declaration runs; move the declaration above its first use.",
  },
  loopClosure: {
    id: "loop-closure",
    message:
      "Espruino shares one binding of a `for (let ...)` variable across all iterations: this function captures `{{name}}` and will see its last value; pass it through a function parameter.",
  },
} as const satisfies Record<string, ScopeRule>;

/** Reported by the bundle checker when acorn cannot parse a bundle. */
export const PARSE_ERROR: ScopeRule = {
  id: "parse-error",
  message: "the bundle does not parse as an ES script: {{name}}",
};

/**
 * esbuild features to switch off when building firmware (its `supported` option): things
 * Espruino lacks that esbuild's minifier otherwise *introduces* into engine-clean source when
 * the target is esnext (esbuild 0.25: `x === null || x === void 0 ? void 0 : x.q` becomes `x?.q`,
 * an unused `catch (e)` becomes `catch {`). With these off it keeps the longer forms, and the
 * bundle check stays clean.
 */
export const ESBUILD_SUPPORTED: Readonly<Record<string, boolean>> = {
  "optional-chain": false,
  "optional-catch-binding": false,
  "logical-assignment": false,
  "exponent-operator": false,
};

/** Every rule id, in table order (the ESLint plugin names its rules after them). */
export function allRuleIds(): string[] {
  return [
    ...SYNTAX_RULES.map((r) => r.id),
    ...GLOBAL_RULES.map((r) => r.id),
    ...Object.values(SCOPE_RULES).map((r) => r.id),
  ];
}

/** Fills `{{name}}` in a message. */
export function formatMessage(message: string, name: string): string {
  return message.split("{{name}}").join(name);
}
