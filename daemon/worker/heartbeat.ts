// Steady-state hang detection without a wake-up per heartbeat.
//
// Every protocol worker pwrite()s its CLOCK_MONOTONIC time into its own
// 8-byte slot of one shared file on tmpfs. vigild keeps one timer, set to the
// earliest deadline (oldest known beat + that worker's heartbeat_timeout),
// and reads the whole file in one call only when it fires. Its idle cost is
// then one wake-up per ~3/4 of a timeout, whatever the number of workers.
import { closeSync, existsSync, ftruncateSync, openSync, readSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { HEARTBEAT_SLOT_BYTES } from "../../lib/protocol/index.js";
import type { Clock, TimerHandle } from "../clock/clock.js";

const GROW_SLOTS = 256;

/** The shared file and its slot allocation. The file is unlinked at once: only inherited fds reach it. */
export class HeartbeatFile {
  readonly fd: number;
  private capacity = 0;
  private readonly free: number[] = [];
  private next = 0;
  private buffer = Buffer.alloc(0);

  constructor(dir: string = defaultDir()) {
    const path = join(dir, `vigil-heartbeat-${process.pid}-${randomBytes(4).toString("hex")}`);
    this.fd = openSync(path, "wx+", 0o600);
    unlinkSync(path);
  }

  allocate(): number {
    const slot = this.free.pop() ?? this.next++;
    if (slot >= this.capacity) {
      this.capacity = slot + GROW_SLOTS;
      ftruncateSync(this.fd, this.capacity * HEARTBEAT_SLOT_BYTES);
    }
    // A reused slot still holds the previous worker's last beat.
    writeSync(this.fd, Buffer.alloc(HEARTBEAT_SLOT_BYTES), 0, HEARTBEAT_SLOT_BYTES, slot * HEARTBEAT_SLOT_BYTES);
    return slot;
  }

  release(slot: number): void {
    this.free.push(slot);
  }

  /** Reads every slot in one pread; returns ms on CLOCK_MONOTONIC per slot (0: never written). */
  readAll(): (slot: number) => number {
    const bytes = this.next * HEARTBEAT_SLOT_BYTES;
    if (this.buffer.length < bytes) this.buffer = Buffer.alloc(this.capacity * HEARTBEAT_SLOT_BYTES);
    const got = bytes === 0 ? 0 : readSync(this.fd, this.buffer, 0, bytes, 0);
    const buffer = this.buffer;
    return (slot) => {
      const offset = slot * HEARTBEAT_SLOT_BYTES;
      if (offset + HEARTBEAT_SLOT_BYTES > got) return 0;
      return Number(buffer.readBigUInt64LE(offset) / 1000n) / 1000;
    };
  }

  close(): void {
    closeSync(this.fd);
  }
}

function defaultDir(): string {
  // tmpfs, so a heartbeat never waits on a disk.
  const candidates = [process.env.RUNTIME_DIRECTORY?.split(":")[0], "/dev/shm", tmpdir()];
  return candidates.find((d): d is string => d !== undefined && d !== "" && existsSync(d)) ?? tmpdir();
}

interface Watched {
  slot: number;
  timeoutMs: number;
  lastBeat: number;
  onMissed: (lastBeatAt: number) => void;
}

export class HeartbeatMonitor {
  private readonly watched = new Map<number, Watched>();
  private timer: TimerHandle | null = null;
  private timerAt = Infinity;
  /** Wake-ups so far; the benchmark and tests read it to prove the cost stays flat. */
  wakeups = 0;

  constructor(
    private readonly file: HeartbeatFile,
    private readonly clock: Clock,
  ) {}

  /** Starts watching `slot`; `since` counts as its first beat. */
  watch(slot: number, timeoutMs: number, since: number, onMissed: (lastBeatAt: number) => void): void {
    this.watched.set(slot, { slot, timeoutMs, lastBeat: since, onMissed });
    this.arm(since + timeoutMs);
  }

  unwatch(slot: number): void {
    this.watched.delete(slot);
    // The timer stays; when it fires with nothing due it re-arms or stops.
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
    this.timerAt = Infinity;
    this.watched.clear();
  }

  /** How far past due the check is (0 when nothing is due): a wedged vigild shows here. */
  overdueMs(now: number): number {
    return this.timerAt === Infinity ? 0 : Math.max(0, now - this.timerAt);
  }

  private arm(at: number): void {
    if (at >= this.timerAt) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.clock.at(at, () => this.check());
  }

  private check(): void {
    this.wakeups++;
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.clock.now();
    const beatOf = this.file.readAll();
    const missed: Watched[] = [];
    let earliest = Infinity;
    for (const w of this.watched.values()) {
      w.lastBeat = Math.max(w.lastBeat, beatOf(w.slot));
      const deadline = w.lastBeat + w.timeoutMs;
      if (deadline <= now) missed.push(w);
      else earliest = Math.min(earliest, deadline);
    }
    for (const w of missed) this.watched.delete(w.slot);
    if (earliest !== Infinity) this.arm(earliest);
    for (const w of missed) w.onMissed(w.lastBeat);
  }
}
