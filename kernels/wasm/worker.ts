/**
 * A kernel thread of the `wasm` executor. It instantiates the kernels over the shared
 * memory it is sent, then loops: sleep until the host bumps the work generation, run its
 * share of the forward pass, repeat; it leaves when the stop word is set. A trap raises
 * the abort word so the other threads leave their barrier instead of waiting forever.
 *
 * @module
 */

/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

import { D, DESC_ADDR } from "./layout.ts";
import { kernelImports } from "./module.ts";

/** What the host sends once. */
interface Init {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  tid: number;
  spin: number;
}

self.onmessage = (ev: MessageEvent<Init>) => {
  const { module, memory, tid, spin } = ev.data;
  const instance = new WebAssembly.Instance(module, kernelImports(module, memory));
  const forward = instance.exports.forward as (d: number, tid: number) => void;
  const ctl = new Int32Array(memory.buffer, DESC_ADDR, 256);
  self.postMessage({ ready: true });
  let seen = Atomics.load(ctl, D.WORK_GEN);
  for (;;) {
    // Spin briefly (the next micro-batch often follows at once), then sleep.
    for (let i = 0; i < spin && Atomics.load(ctl, D.WORK_GEN) === seen; i++);
    while (Atomics.load(ctl, D.WORK_GEN) === seen) Atomics.wait(ctl, D.WORK_GEN, seen, 1000);
    seen = Atomics.load(ctl, D.WORK_GEN);
    if (Atomics.load(ctl, D.STOP) !== 0) break;
    try {
      forward(DESC_ADDR, tid);
    } catch (e) {
      Atomics.store(ctl, D.ABORT, 1);
      Atomics.notify(ctl, D.BAR_GEN);
      self.postMessage({ error: String(e) });
    }
  }
  self.close();
};
