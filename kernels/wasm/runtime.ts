/**
 * The kernel runtime: one shared `WebAssembly.Memory`, the kernels instantiated on the
 * calling thread (thread 0) and in `threads - 1` Workers. A forward pass is started by
 * bumping a generation word that the Workers sleep on; thread 0 then runs its own share
 * and returns when every thread has passed the kernels' final barrier (DESIGN.md, "Real
 * execution": barriers in shared memory, no message per kernel).
 *
 * @module
 */

import { D, DESC_ADDR, DESC_BYTES, PHASES } from "./layout.ts";
import { compileKernels, kernelImports, type KernelVariant } from "./module.ts";
import { workerSource } from "./worker_source.ts";
import { Worker } from "node:worker_threads";

/** Options of {@link KernelRuntime.create}. */
export interface RuntimeOptions {
  /** Threads including the calling one. */
  threads: number;
  /** Pages of 64 KiB. */
  pages: number;
  /** Spin iterations before a thread sleeps in a barrier or between steps. */
  spin: number;
  /** Which build to use ("auto": relaxed SIMD where it validates). */
  variant?: KernelVariant | "auto";
}

/** The kernel module's exports. */
interface KernelExports {
  forward(d: number, tid: number): void;
  argmax(p: number, n: number): number;
  copyProbe(dst: number, src: number, bytes: number, reps: number): void;
  readProbe(src: number, bytes: number): number;
}

/** Owns the memory, the instance on this thread and the worker threads. */
export class KernelRuntime {
  /** The shared memory. */
  readonly memory: WebAssembly.Memory;
  /** Which build runs. */
  readonly variant: KernelVariant;
  /** Threads including this one. */
  readonly threads: number;
  readonly #exports: KernelExports;
  readonly #workers: Worker[];
  readonly #ctl: Int32Array;
  #failure: string | undefined;
  #closed = false;

  private constructor(
    memory: WebAssembly.Memory,
    variant: KernelVariant,
    instance: WebAssembly.Instance,
    workers: Worker[],
  ) {
    this.memory = memory;
    this.variant = variant;
    this.threads = workers.length + 1;
    this.#exports = instance.exports as unknown as KernelExports;
    this.#workers = workers;
    this.#ctl = new Int32Array(memory.buffer, DESC_ADDR, DESC_BYTES / 4);
    for (const w of workers) {
      w.on("message", (msg: { error?: string }) => {
        if (msg?.error) this.#fail(msg.error);
      });
      w.on("error", (e: Error) => this.#fail(e.message));
    }
  }

  #fail(message: string): void {
    this.#failure ??= message;
    Atomics.store(this.#ctl, D.ABORT, 1);
    Atomics.notify(this.#ctl, D.BAR_GEN);
  }

  /** Compile, allocate and start the threads. */
  static async create(options: RuntimeOptions): Promise<KernelRuntime> {
    const { module, variant } = await compileKernels(options.variant ?? "auto");
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({
        initial: options.pages,
        maximum: options.pages,
        shared: true,
      });
    } catch (e) {
      throw new Error(
        `could not allocate ${(options.pages / 16).toFixed(0)} MiB of shared WebAssembly ` +
          `memory for the wasm executor: ${(e as Error).message}`,
      );
    }
    const instance = new WebAssembly.Instance(module, kernelImports(module, memory));
    const workers: Worker[] = [];
    const source = workerSource();
    try {
      for (let tid = 1; tid < options.threads; tid++) {
        const worker = new Worker(source, { eval: true });
        workers.push(worker);
        await new Promise<void>((resolve, reject) => {
          worker.once(
            "message",
            (msg: { ready?: boolean; error?: string }) =>
              msg?.ready ? resolve() : reject(new Error(msg?.error)),
          );
          worker.once(
            "error",
            (e: Error) =>
              reject(new Error(`wasm executor thread ${tid} failed to start: ${e.message}`)),
          );
          worker.postMessage({ module, memory, tid, spin: options.spin });
        });
        // The threads sleep between steps; they must not keep the process alive.
        worker.unref();
      }
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new KernelRuntime(memory, variant, instance, workers);
  }

  /** The memory's buffer (shared; views on it stay valid since it never grows). */
  get buffer(): SharedArrayBuffer {
    return this.memory.buffer as unknown as SharedArrayBuffer;
  }

  /** Run one forward pass of the micro-batch described in memory, on every thread. */
  forward(): void {
    if (this.#closed) throw new Error("the wasm executor is closed");
    if (this.#failure !== undefined || Atomics.load(this.#ctl, D.ABORT) !== 0) {
      throw new Error(`a wasm executor thread failed: ${this.#failure ?? "aborted"}`);
    }
    if (this.#workers.length > 0) {
      Atomics.add(this.#ctl, D.WORK_GEN, 1);
      Atomics.notify(this.#ctl, D.WORK_GEN);
    }
    try {
      this.#exports.forward(DESC_ADDR, 0);
    } catch (e) {
      Atomics.store(this.#ctl, D.ABORT, 1);
      Atomics.notify(this.#ctl, D.BAR_GEN);
      this.#failure ??= String(e);
      throw new Error(`the wasm executor's kernels failed: ${this.#failure}`, { cause: e });
    }
  }

  /** Index of the largest of `n` floats at byte address `addr` (ties: lowest index). */
  argmax(addr: number, n: number): number {
    return this.#exports.argmax(addr, n);
  }

  /** Copy `bytes` from `src` to `dst` `reps` times (bandwidth probe, this thread only). */
  copyProbe(dst: number, src: number, bytes: number, reps: number): void {
    this.#exports.copyProbe(dst, src, bytes, reps);
  }

  /** Sum `bytes` floats at `src` (read-bandwidth probe, this thread only). */
  readProbe(src: number, bytes: number): number {
    return this.#exports.readProbe(src, bytes);
  }

  /**
   * Read `bytes` (a multiple of 64) at `src` with every thread, each its share; returns
   * the seconds it took (a read-bandwidth probe of the whole thread pool).
   */
  readProbeAll(src: number, bytes: number): number {
    const saved = [this.#ctl[D.T], this.#ctl[D.NOUT]];
    this.#ctl[D.PROBE_ADDR] = src;
    this.#ctl[D.PROBE_BYTES] = bytes;
    const t = performance.now();
    try {
      this.forward();
    } finally {
      this.#ctl[D.PROBE_ADDR] = 0;
      this.#ctl[D.PROBE_BYTES] = 0;
      [this.#ctl[D.T], this.#ctl[D.NOUT]] = saved;
    }
    return (performance.now() - t) / 1000;
  }

  /** Turn per-phase timing on (zeroing it) or off. */
  setProfiling(on: boolean): void {
    this.#ctl[D.PROFILE] = on ? 1 : 0;
    new Float64Array(this.buffer, DESC_ADDR + D.PROF_SLOTS * 4, PHASES.length).fill(0);
  }

  /** Milliseconds spent per phase since profiling was turned on (thread 0's wall time). */
  profile(): Record<string, number> {
    const slots = new Float64Array(this.buffer, DESC_ADDR + D.PROF_SLOTS * 4, PHASES.length);
    return Object.fromEntries(PHASES.map((name, i) => [name, slots[i]]));
  }

  /** Stop the worker threads. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#ctl, D.STOP, 1);
    // A thread still inside a barrier (after a failure elsewhere) leaves it by trapping.
    Atomics.store(this.#ctl, D.ABORT, 1);
    Atomics.notify(this.#ctl, D.BAR_GEN);
    Atomics.add(this.#ctl, D.WORK_GEN, 1);
    Atomics.notify(this.#ctl, D.WORK_GEN);
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
