/**
 * Clocks. The engine loop is the same on both (DESIGN.md, "One engine, two clocks"):
 * on the wall clock a step takes the time it takes; on the virtual clock the executor
 * predicts a duration and the clock jumps by it.
 *
 * @module
 */

/** A source of time in seconds. */
export interface Clock {
  /** True for simulated time. */
  readonly virtual: boolean;
  /** Seconds since the clock started. */
  now(): number;
  /** Move forward by `seconds` (virtual clocks only; the wall clock ignores it). */
  advance(seconds: number): void;
  /** Jump forward to `time` if it is later than now (virtual clocks only). */
  advanceTo(time: number): void;
}

/** Real time, from `performance.now()`. */
export class WallClock implements Clock {
  /** Always false. */
  readonly virtual = false;
  readonly #origin = performance.now();
  /** Seconds since construction. */
  now(): number {
    return (performance.now() - this.#origin) / 1000;
  }
  /** No-op: real time moves by itself. */
  advance(_seconds: number): void {}
  /** No-op: real time moves by itself. */
  advanceTo(_time: number): void {}
}

/** Simulated time that moves only when told. */
export class VirtualClock implements Clock {
  /** Always true. */
  readonly virtual = true;
  #t: number;
  /** Starts at `start` seconds (default 0). */
  constructor(start = 0) {
    this.#t = start;
  }
  /** Current simulated time. */
  now(): number {
    return this.#t;
  }
  /** Move forward by `seconds` (negative values are refused). */
  advance(seconds: number): void {
    if (!(seconds >= 0)) throw new RangeError(`cannot advance a clock by ${seconds} s`);
    this.#t += seconds;
  }
  /** Jump to `time` when it is in the future. */
  advanceTo(time: number): void {
    if (time > this.#t) this.#t = time;
  }
}
