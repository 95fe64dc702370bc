// Lint for bugs the type check lets through, not for style: a promise nobody
// awaits (an error that vanishes, a stop that is not waited for), a switch
// that silently misses a newly added event or message kind, an `any` that
// leaks out of JSON.parse or a library, a method called without its `this`.
// `make lint` and `make test` run it (scripts/test.sh, after the type check).
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "bench/**", ".run/**"] },
  {
    files: ["daemon/**/*.ts", "lib/**/*.ts", "test/**/*.ts", "scripts/**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: "./tsconfig.json", tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // Kept from the recommended set, named here because they are the point.
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      // A `default:` does not count: a switch over a union lists every member,
      // so a new event kind or message type is a lint error in each switch
      // that has to decide what to do with it.
      "@typescript-eslint/switch-exhaustiveness-check": [
        "error",
        { considerDefaultExhaustiveForUnions: false, allowDefaultCaseForExhaustiveSwitch: true },
      ],
      // `return promise` inside try/catch skips the catch and the finally.
      "@typescript-eslint/return-await": ["error", "in-try-catch"],
      // Core rules that are bugs whenever they fire.
      "no-async-promise-executor": "error",
      "no-constant-binary-expression": "error",
      "no-self-compare": "error",
      "no-unsafe-finally": "error",
      "no-cond-assign": "error",
      "no-dupe-else-if": "error",

      // Off from the recommended set: style, not bugs.
      // The code writes `xs[i]!` as a reader's note without
      // noUncheckedIndexedAccess, which this rule calls unnecessary.
      "@typescript-eslint/no-unnecessary-type-assertion": "off",
      // An async function without await is a fine way to return a promise.
      "@typescript-eslint/require-await": "off",
      "prefer-const": "off",
      // prom-client's collect() callbacks get the metric as `this`.
      "@typescript-eslint/no-this-alias": "off",
    },
  },
);
