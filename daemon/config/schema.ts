// The one declaration of vigil.yaml: each key's validation, default and place
// in the typed Config (types.ts). Messages are written to follow "KEY: ", so
// they read as sentences once the loader prefixes file, line and key.
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { PROTOCOL_MODES, RESTART_POLICIES, TEARDOWN_SETTINGS } from "../core/vocabulary.js";
import { DURATION_PATTERN, formatDuration, parseDuration, parseRestartLimit, parseSize, RESTART_LIMIT_PATTERN, SIZE_PATTERN } from "./duration.js";
import { describeValue } from "./errors.js";
import type { Config, ListenAddress, ProgramConfig, RestartConfig, ShutdownConfig, SocketAddress, SocketConfig } from "./types.js";

export const PROGRAM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
export const DEFAULT_STATE_DIR = "/var/lib/vigil";
const MAX_INSTANCES = 10_000;

type JSONSchema = z.core.JSONSchema.JSONSchema;

/**
 * What each key accepts as written in vigil.yaml, in JSON Schema terms, for
 * the schema editors use (json-schema.ts). Most keys are checked by a parser
 * behind a transform, which z.toJSONSchema cannot see through, so each one
 * states its input form here, next to its parser: one declaration, two uses.
 */
export const inputForms = z.registry<JSONSchema>();

/** A mapping whose unknown keys are errors that list the known ones. */
function section<S extends z.core.$ZodLooseShape>(shape: S) {
  const known = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown key; expected one of: ${known}`
        : `must be a mapping, got ${describeValue(issue.input)}`,
  });
}

/** A value checked by a parser that throws with a message; `form` is what it accepts, for the JSON Schema. */
function parsed<T>(parse: (value: unknown) => T, form: JSONSchema) {
  return z
    .unknown()
    .transform((value, ctx): T => {
      try {
        return parse(value);
      } catch (err) {
        ctx.issues.push({ code: "custom", input: value, message: (err as Error).message });
        return z.NEVER;
      }
    })
    .register(inputForms, form);
}

/** A key that may be left out (null in the result); an explicit null is still an error. */
function optional<T>(parse: (value: unknown) => T, form: JSONSchema) {
  return parsed<T | null>(parse, form).default(null);
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) {
  const error = (issue: { input?: unknown }) => `must be one of ${values.join(", ")}, got ${describeValue(issue.input)}`;
  return z.enum(values, { error }).default(fallback);
}

const STRING: JSONSchema = { type: "string" };
const NON_EMPTY: JSONSchema = { type: "string", minLength: 1 };
const ABSOLUTE_PATH: JSONSchema = { type: "string", pattern: "^/" };
const DURATION: JSONSchema = { anyOf: [{ const: 0 }, { type: "string", pattern: DURATION_PATTERN }] };
const SIZE: JSONSchema = { anyOf: [{ type: "integer", minimum: 0 }, { type: "string", pattern: SIZE_PATTERN }] };
/** As listenAddress parses it (the port's upper bound, 65535, is the parser's alone). */
const HOST_PORT = String.raw`^(?:\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):\d{1,5}$`;
const integerForm = (minimum: number, maximum: number): JSONSchema => ({ type: "integer", minimum, maximum });

/** `floor` (if any) names the smallest sensible value; 0 always means "off" where allowed. */
function duration(fallback: string, floor?: { ms: number; zeroAllowed: boolean }) {
  return parsed((value) => {
    const ms = parseDuration(value);
    if (floor && ms < floor.ms && !(ms === 0 && floor.zeroAllowed)) {
      const allowed = floor.zeroAllowed ? `0 (off) or at least ${formatDuration(floor.ms)}` : `at least ${formatDuration(floor.ms)}`;
      throw new Error(`must be ${allowed}, got ${describeValue(value)}`);
    }
    return ms;
  }, DURATION).prefault(fallback);
}
const POSITIVE = { ms: 1, zeroAllowed: false };

function string(value: unknown): string {
  if (typeof value === "string") return value;
  const scalar = typeof value === "number" || typeof value === "boolean";
  const hint = scalar ? ` (quote it in YAML: "${String(value)}")` : "";
  throw new Error(`must be a string${hint}, got ${describeValue(value)}`);
}

function nonEmptyString(value: unknown): string {
  const str = string(value);
  if (str === "") throw new Error("must not be empty");
  return str;
}

function absolutePath(value: unknown): string {
  const str = nonEmptyString(value);
  if (!path.isAbsolute(str)) throw new Error(`must be an absolute path, got ${describeValue(value)}`);
  return str;
}

function integer(min: number, max: number) {
  return (value: unknown): number => {
    if (typeof value === "number" && Number.isInteger(value) && value <= max && value >= min) return value;
    const bound = typeof value === "number" && value > max ? `<= ${max}` : `>= ${min}`;
    throw new Error(`must be an integer ${bound}, got ${describeValue(value)}`);
  };
}

/** "host:port", "[v6addr]:port" or "off" (null). Port 0 lets the kernel choose, which tests rely on. */
function listenAddress(value: unknown): ListenAddress | null {
  if (value === "off") return null;
  const match = typeof value === "string" ? /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(value) : null;
  const port = Number(match?.[3]);
  if (!match || port > 65_535) {
    throw new Error(`must be "HOST:PORT" (e.g. "127.0.0.1:9850" or "[::1]:9850") or "off", got ${describeValue(value)}`);
  }
  return { host: match[1] ?? match[2]!, port };
}

/** What `sockets.NAME.listen` takes: "HOST:PORT", "[V6]:PORT" or an absolute unix-socket path. */
export function socketAddress(value: unknown): SocketAddress {
  if (typeof value === "string" && value.startsWith("/")) {
    // sun_path holds 108 bytes with its terminating NUL.
    if (Buffer.byteLength(value) > 107) throw new Error(`must be a unix-socket path of at most 107 bytes, got ${describeValue(value)}`);
    return { kind: "unix", path: path.normalize(value) };
  }
  let tcp: ListenAddress | null = null;
  try {
    tcp = value === "off" ? null : listenAddress(value);
  } catch {
    tcp = null;
  }
  if (!tcp) {
    throw new Error(`must be "HOST:PORT" (e.g. "0.0.0.0:8080" or "[::]:8080") or an absolute unix-socket path, got ${describeValue(value)}`);
  }
  return { kind: "tcp", ...tcp };
}

/** One text per address, so two sockets on the same one can be told apart from two different ones. */
export function addressKey(a: SocketAddress): string {
  return a.kind === "unix" ? `unix:${a.path}` : `tcp:${a.host.toLowerCase()}:${a.port}`;
}

export function formatSocketAddress(a: SocketAddress): string {
  if (a.kind === "unix") return a.path;
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Accepts "SIGTERM", "TERM" or "term"; always returns the SIG-prefixed name. */
function signalName(value: unknown): NodeJS.Signals {
  const upper = typeof value === "string" ? value.toUpperCase() : "";
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  if (name === "SIGKILL" || name === "SIGSTOP") {
    const why = "it cannot be caught, so workers would get no chance to shut down";
    throw new Error(`must not be ${name}: ${why} (vigild sends SIGKILL itself after shutdown.timeout)`);
  }
  if (upper === "" || !Object.hasOwn(os.constants.signals, name)) {
    throw new Error(`must be a signal name such as SIGTERM, SIGINT, SIGQUIT, SIGHUP or SIGUSR1, got ${describeValue(value)}`);
  }
  return name as NodeJS.Signals;
}

/** Every name signalName accepts: "SIGTERM", "TERM" or "term" (any case). */
function signalForm(): JSONSchema {
  const names = Object.keys(os.constants.signals).filter((n) => n !== "SIGKILL" && n !== "SIGSTOP").sort();
  const anyCase = (text: string) => [...text].map((ch) => (/[A-Za-z]/.test(ch) ? `[${ch.toUpperCase()}${ch.toLowerCase()}]` : ch)).join("");
  const pattern = `^(?:${anyCase("SIG")})?(?:${names.map((n) => anyCase(n.slice(3))).join("|")})$`;
  // The enum is what an editor offers; the pattern is what vigild accepts.
  return { anyOf: [{ enum: names }, { type: "string", pattern }] };
}

function defaultStateDir(): string {
  // systemd's StateDirectory= may list several directories, colon-separated; the first is ours.
  return process.env.STATE_DIRECTORY?.split(":")[0] || DEFAULT_STATE_DIR;
}

/** A check that `field` stands in relation `op` to `other`, both durations of the same mapping. */
function ordered<K extends string>(where: string, field: K, op: "<" | "<=" | ">=", other: K) {
  return (ctx: z.core.ParsePayload<Record<K, number>>) => {
    const a = ctx.value[field];
    const b = ctx.value[other];
    // zod skips checks once a field has failed, but a failed field must never read as a second error.
    if (typeof a !== "number" || typeof b !== "number") return;
    if (op === "<" ? a < b : op === "<=" ? a <= b : a >= b) return;
    const message = `must be ${op} ${where}.${other} (${formatDuration(b)}), got ${formatDuration(a)}`;
    ctx.issues.push({ code: "custom", path: [field], input: a, message });
  };
}

const ENV_NAME = /^[^=\0]+$/;

/** z.record, except that a "__proto__" key is an error: zod records drop it silently. */
function mapOf<K extends z.core.$ZodRecordKey, V extends z.core.SomeType>(key: K, value: V, error: z.core.$ZodErrorMap) {
  // A bare transform first (not z.unknown().check()): z.toJSONSchema then
  // describes the input as the record, which is what the file holds.
  return z
    .transform((input: unknown, ctx) => {
      if (input !== null && typeof input === "object" && Object.hasOwn(input, "__proto__")) {
        ctx.issues.push({ code: "custom", path: ["__proto__"], input, message: "is a reserved name" });
      }
      return input;
    })
    .pipe(z.record(key, value, { error }));
}

const command = z
  .array(parsed(nonEmptyString, NON_EMPTY), {
    error: (issue) => {
      if (issue.input === undefined) return "is required: the program and its arguments as a list, e.g. [python3, app.py]";
      const words = typeof issue.input === "string" ? ` such as [${issue.input.trim().split(/\s+/).join(", ")}]` : "";
      return `must be a list${words}, not one string (vigil does not split command lines), got ${describeValue(issue.input)}`;
    },
  })
  .min(1, "must name at least the program to run");

const env = mapOf(z.string().regex(ENV_NAME), parsed(string, STRING), (issue) =>
    issue.code === "invalid_key"
      ? "is not a valid environment variable name"
      : `must be a mapping of variable name to string, got ${describeValue(issue.input)}`,
);

const restart = section({
  policy: oneOf(RESTART_POLICIES, "always"),
  // 0: restart at once, every time (restart.limit still ends a crash loop).
  backoff_initial: duration("100ms"),
  backoff_max: duration("30s", POSITIVE),
  limit: parsed(parseRestartLimit, { type: "string", pattern: RESTART_LIMIT_PATTERN }).prefault("10 in 60s"),
})
  .check(ordered("restart", "backoff_max", ">=", "backoff_initial"))
  .transform(
    (r): RestartConfig => ({
      policy: r.policy,
      backoffInitialMs: r.backoff_initial,
      backoffMaxMs: r.backoff_max,
      limit: r.limit,
    }),
  );

const recycle = section({
  max_age: duration("0"),
  max_memory: parsed(parseSize, SIZE).prefault("0"),
}).transform((r) => ({ maxAgeMs: r.max_age, maxMemoryBytes: r.max_memory }));

const shutdown = section({
  signal: parsed(signalName, signalForm()).prefault("SIGTERM"),
  handlers_timeout: duration("2s"),
  teardown: oneOf(TEARDOWN_SETTINGS, "destroy"),
  teardown_hang_after: duration("1s"),
  timeout: duration("5s", POSITIVE),
})
  .check(ordered("shutdown", "handlers_timeout", "<=", "timeout"), ordered("shutdown", "teardown_hang_after", "<", "timeout"))
  .transform(
    (s): ShutdownConfig => ({
      signal: s.signal,
      handlersTimeoutMs: s.handlers_timeout,
      teardown: s.teardown,
      teardownHangAfterMs: s.teardown_hang_after,
      timeoutMs: s.timeout,
    }),
  );

const program = section({
  command,
  instances: parsed(integer(1, MAX_INSTANCES), integerForm(1, MAX_INSTANCES)).prefault(1),
  cwd: optional(absolutePath, ABSOLUTE_PATH),
  env: env.prefault({}),
  user: optional(nonEmptyString, NON_EMPTY),
  // auto = plain until the worker writes on its socket, on = must say
  // ready, off = no socket at all (README "Configuration").
  protocol: oneOf(PROTOCOL_MODES, "auto"),
  sockets: z
    .array(parsed(nonEmptyString, NON_EMPTY), { error: (issue) => `must be a list of names under sockets:, got ${describeValue(issue.input)}` })
    .check((ctx) => {
      const seen = new Set<string>();
      ctx.value.forEach((name, i) => {
        if (seen.has(name)) ctx.issues.push({ code: "custom", path: [i], input: name, message: `lists ${JSON.stringify(name)} twice` });
        seen.add(name);
      });
    })
    .prefault([]),
  ready_timeout: duration("30s", POSITIVE),
  // Below 100ms ordinary GC pauses would read as hangs.
  heartbeat_timeout: duration("10s", { ms: 100, zeroAllowed: true }),
  stack_dump_grace: duration("250ms"),
  restart: restart.prefault({}),
  recycle: recycle.prefault({}),
  shutdown: shutdown.prefault({}),
}).transform(
  (p): Omit<ProgramConfig, "name"> => ({
    command: p.command,
    instances: p.instances,
    cwd: p.cwd,
    env: p.env,
    user: p.user,
    protocol: p.protocol,
    sockets: p.sockets,
    readyTimeoutMs: p.ready_timeout,
    heartbeatTimeoutMs: p.heartbeat_timeout,
    stackDumpGraceMs: p.stack_dump_grace,
    restart: p.restart,
    recycle: p.recycle,
    shutdown: p.shutdown,
  }),
);

const programs = mapOf(z.string().regex(PROGRAM_NAME), program, (issue) =>
  issue.code === "invalid_key"
    ? "is not a valid program name: use 1 to 64 of A-Z a-z 0-9 _ . -"
    : issue.input == null
      ? "at least one program is required"
      : `must be a mapping of program name to program, got ${describeValue(issue.input)}`,
)
  .check((ctx) => {
    if (Object.keys(ctx.value).length === 0) {
      ctx.issues.push({ code: "custom", input: ctx.value, message: "at least one program is required" });
    }
  })
  .register(inputForms, { minProperties: 1 })
  // The loader restores the file's order, which JavaScript objects lose for names like "10".
  .transform((map): ProgramConfig[] => Object.entries(map).map(([name, p]) => ({ name, ...p })));

const socket = section({
  listen: parsed(socketAddress, {
    anyOf: [
      { type: "string", pattern: HOST_PORT },
      { type: "string", pattern: "^/", maxLength: 107 },
    ],
  }),
  // systemd's Backlog= default is SOMAXCONN; 1024 holds a restart's worth of connections for most services.
  backlog: parsed(integer(1, 65_535), integerForm(1, 65_535)).prefault(1024),
});

const sockets = mapOf(z.string().regex(PROGRAM_NAME), socket, (issue) =>
  issue.code === "invalid_key"
    ? "is not a valid socket name: use 1 to 64 of A-Z a-z 0-9 _ . - (it becomes a LISTEN_FDNAMES entry)"
    : `must be a mapping of socket name to socket, got ${describeValue(issue.input)}`,
).transform((map): SocketConfig[] => Object.entries(map).map(([name, s]) => ({ name, listen: s.listen, backlog: s.backlog })));

/** Checks across sockets: and programs: (a name each side must know, one socket per address). */
function socketsAgree(ctx: z.core.ParsePayload<{ sockets: SocketConfig[]; programs: ProgramConfig[] }>): void {
  const { sockets, programs } = ctx.value;
  if (!Array.isArray(sockets) || !Array.isArray(programs)) return;
  const names = new Set(sockets.map((s) => s.name));
  const used = new Set<string>();
  for (const program of programs) {
    program.sockets.forEach((name, i) => {
      used.add(name);
      if (!names.has(name)) {
        const known = names.size > 0 ? `; known: ${[...names].join(", ")}` : "; there is no sockets: section";
        ctx.issues.push({ code: "custom", path: ["programs", program.name, "sockets", i], input: name, message: `names no socket under sockets:, got ${JSON.stringify(name)}${known}` });
      }
    });
  }
  const byAddress = new Map<string, string>();
  for (const s of sockets) {
    if (!used.has(s.name)) {
      ctx.issues.push({ code: "custom", path: ["sockets", s.name], input: s.name, message: "no program uses this socket (add it to a program's sockets: or remove it)" });
    }
    const key = addressKey(s.listen);
    const other = byAddress.get(key);
    if (other !== undefined) {
      ctx.issues.push({ code: "custom", path: ["sockets", s.name, "listen"], input: s.name, message: `${formatSocketAddress(s.listen)} is already the address of socket ${other}` });
    } else byAddress.set(key, s.name);
  }
}

export const configSchema = section({
  metrics: section({
    listen: parsed(listenAddress, { anyOf: [{ const: "off" }, { type: "string", pattern: HOST_PORT }] }).prefault("127.0.0.1:9850"),
  }).prefault({}),
  log: section({
    level: oneOf(["error", "warn", "info", "debug"], "info"),
    format: oneOf(["auto", "journal", "json", "text"], "auto"),
  }).prefault({}),
  dbus: section({ bus: oneOf(["auto", "system", "session", "none"], "auto") }).prefault({}),
  watchdog: section({ max_loop_lag: duration("1s", POSITIVE) })
    .transform((w) => ({ maxLoopLagMs: w.max_loop_lag }))
    .prefault({}),
  // The default depends on vigild's environment ($STATE_DIRECTORY): the JSON Schema names the usual one.
  state_dir: parsed(absolutePath, { ...ABSOLUTE_PATH, default: DEFAULT_STATE_DIR }).default(defaultStateDir),
  sockets: sockets.prefault({}),
  programs,
})
  .check(socketsAgree)
  .transform(
  (c): Omit<Config, "file"> => ({
    metrics: c.metrics,
    log: c.log,
    dbus: c.dbus,
    watchdog: c.watchdog,
    stateDir: c.state_dir,
    sockets: c.sockets,
    programs: c.programs,
  }),
);
