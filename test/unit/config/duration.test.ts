import { expect } from "chai";
import {
  formatDuration,
  MAX_DURATION_MS,
  parseDuration,
  parseRestartLimit,
  parseSize,
} from "../../../daemon/config/duration.js";

describe("config/duration", () => {
  describe("parseDuration", () => {
    const good: [unknown, number][] = [
      ["250ms", 250],
      ["5s", 5_000],
      ["2m", 120_000],
      ["1h", 3_600_000],
      ["1.5s", 1_500],
      ["0", 0],
      [0, 0],
      ["0s", 0],
      ["1h30m", 5_400_000],
      ["1m30.5s", 90_500],
      ["2m5s100ms", 125_100],
    ];
    for (const [input, ms] of good) {
      it(`${JSON.stringify(input)} -> ${ms}`, () => expect(parseDuration(input)).to.equal(ms));
    }

    const bad: [unknown, RegExp][] = [
      ["5 seconds", /must be a duration such as .*got "5 seconds"/],
      ["5", /must be a duration/],
      ["-5s", /must be a duration/],
      ["5S", /must be a duration/],
      ["1s2h", /must be a duration/],
      ["5s5s", /must be a duration/],
      ["", /must be a duration/],
      [5, /e\.g\. "5s", got the bare number 5/],
      [null, /got null/],
      [["5s"], /got a list/],
      ["600h", /must be at most 596h31m23\.647s/],
    ];
    for (const [input, pattern] of bad) {
      it(`rejects ${JSON.stringify(input)}`, () => expect(() => parseDuration(input)).to.throw(pattern));
    }
  });

  describe("parseSize", () => {
    const good: [unknown, number][] = [
      ["512MiB", 512 * 2 ** 20],
      ["1GiB", 2 ** 30],
      ["100KiB", 102_400],
      ["1000", 1_000],
      ["512MB", 512_000_000],
      ["0", 0],
      [0, 0],
      [4096, 4096],
      ["1.5KiB", 1_536],
      ["2 GB", 2e9],
      ["10B", 10],
    ];
    for (const [input, bytes] of good) {
      it(`${JSON.stringify(input)} -> ${bytes}`, () => expect(parseSize(input)).to.equal(bytes));
    }

    for (const input of ["512M", "1 gigabyte", "-1MiB", "", "MiB", -1, 1.5, true]) {
      it(`rejects ${JSON.stringify(input)}`, () => expect(() => parseSize(input)).to.throw(/must be a size such as/));
    }
  });

  describe("parseRestartLimit", () => {
    it('"10 in 60s"', () => expect(parseRestartLimit("10 in 60s")).to.deep.equal({ count: 10, windowMs: 60_000 }));
    it('"1 in 1h30m"', () => expect(parseRestartLimit("1 in 1h30m")).to.deep.equal({ count: 1, windowMs: 5_400_000 }));
    for (const input of ["10 per minute", "0 in 60s", "10 in 0", "10 in", "10in60s", "ten in 60s", 10, "-1 in 5s"]) {
      it(`rejects ${JSON.stringify(input)}`, () =>
        expect(() => parseRestartLimit(input)).to.throw(/must be "COUNT in DURATION"/));
    }
  });

  describe("formatDuration", () => {
    const cases: [number, string][] = [
      [0, "0"],
      [250, "250ms"],
      [1_000, "1s"],
      [1_500, "1.5s"],
      [120_000, "2m"],
      [90_500, "1m30.5s"],
      [3_600_000, "1h"],
      [5_400_000, "1h30m"],
      [3_601_001, "1h1.001s"],
      [0.4, "0"],
      [-1_500, "-1.5s"],
    ];
    for (const [ms, text] of cases) {
      it(`${ms} -> ${text}`, () => expect(formatDuration(ms)).to.equal(text));
    }

    it("parseDuration inverts it", () => {
      for (const ms of [0, 1, 999, 1_000, 1_001, 59_999, 61_001, 3_599_999, 86_400_000, MAX_DURATION_MS]) {
        expect(parseDuration(formatDuration(ms)), String(ms)).to.equal(ms);
      }
    });
  });
});
