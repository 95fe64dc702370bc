/**
 * The default branch of a switch over a closed union: the compiler rejects
 * the call while a member is unhandled, so a new event or effect cannot be
 * dropped silently.
 */
export function assertNever(value: never, what = "value"): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(value)}`);
}
