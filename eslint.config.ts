// Lint for the whole repo (no type information, to stay fast), plus the engine subset for code that
// ships in firmware bundles. The subset's facts live in tools/engine_subset/rules.ts; this file only
// says which files they apply to.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";
import { PLUGIN_NAME, engineSubsetPlugin, firmwareRules } from "./tools/engine_subset/eslint_plugin.ts";

/** Firmware: everything under device/ and protocol/ that goes into a bundle. */
const FIRMWARE_FILES = ["device/**/*.ts", "protocol/**/*.ts"];
/**
 * Runs on Node, not in a bundle: tests, declarations, the code generator, the host's protocol
 * helpers and the test-vector writer, the build, the Node target.
 */
const NODE_ONLY_FILES = [
  "**/*.test.ts",
  "**/*.d.ts",
  "protocol/codegen/**",
  "protocol/node/**",
  "protocol/vectors/**",
  "device/build/**",
  "device/targets/node/**",
];

export default defineConfig(
  { ignores: ["**/node_modules/", "**/artifacts/"] },
  {
    files: ["**/*.{ts,mts,cts}"],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
    },
  },
  {
    files: FIRMWARE_FILES,
    ignores: NODE_ONLY_FILES,
    plugins: { [PLUGIN_NAME]: engineSubsetPlugin },
    rules: {
      ...firmwareRules,
      // Firmware must write `catch (e)` (engine-subset/optional-catch-binding), used or not.
      "@typescript-eslint/no-unused-vars": ["error", { caughtErrors: "none" }],
      // Firmware callbacks are often plain `function`s that reach the instance as `self`.
      "@typescript-eslint/no-this-alias": ["error", { allowedNames: ["self"] }],
    },
  },
);
