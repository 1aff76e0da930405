/**
 * The source of a kernel thread, started as a `node:worker_threads` Worker from this
 * string: nothing is read from disk or the network, so threads start without any
 * permission wherever the package was loaded from, and the Worker can be unreferenced so
 * that it never keeps the process alive.
 *
 * A thread instantiates the kernels over the shared memory it is sent, then loops: sleep
 * until the host bumps the work generation, run its share of the forward pass, repeat; it
 * leaves when the stop word is set. A trap raises the abort word so the other threads
 * leave their barrier instead of waiting forever.
 *
 * @module
 */

import { D, DESC_ADDR } from "./layout.ts";

/** JavaScript of the worker (plain script: evaluated code is not type-stripped). */
export function workerSource(): string {
  return `
const DESC = ${DESC_ADDR};
const WORK_GEN = ${D.WORK_GEN};
const STOP = ${D.STOP};
const ABORT = ${D.ABORT};
const BAR_GEN = ${D.BAR_GEN};

function imports(module, memory) {
  const out = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    const ns = (out[imp.module] ??= {});
    if (imp.kind === "memory") ns[imp.name] = memory;
    else if (imp.kind === "function" && imp.name === "now") ns[imp.name] = () => performance.now();
    else throw new Error("unexpected kernel import " + imp.module + "." + imp.name);
  }
  return out;
}

const { parentPort } = require("node:worker_threads");

parentPort.once("message", ({ module, memory, tid, spin }) => {
  let forward;
  try {
    forward = new WebAssembly.Instance(module, imports(module, memory)).exports.forward;
  } catch (e) {
    parentPort.postMessage({ error: String(e) });
    return;
  }
  const ctl = new Int32Array(memory.buffer, DESC, 256);
  // Read the generation before saying ready: the host may start a pass the moment it
  // hears from us, and a bump between the two would be missed forever.
  let seen = Atomics.load(ctl, WORK_GEN);
  parentPort.postMessage({ ready: true });
  for (;;) {
    // Spin briefly (the next micro-batch often follows at once), then sleep.
    for (let i = 0; i < spin && Atomics.load(ctl, WORK_GEN) === seen; i++);
    while (Atomics.load(ctl, WORK_GEN) === seen) Atomics.wait(ctl, WORK_GEN, seen, 1000);
    seen = Atomics.load(ctl, WORK_GEN);
    if (Atomics.load(ctl, STOP) !== 0) break;
    try {
      forward(DESC, tid);
    } catch (e) {
      Atomics.store(ctl, ABORT, 1);
      Atomics.notify(ctl, BAR_GEN);
      parentPort.postMessage({ error: String(e) });
    }
  }
  // Stopped: the host terminates this thread.
});
`;
}
