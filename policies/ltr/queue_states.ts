/**
 * Per-request policy state aligned with the engine's queue arrays. The engine hands the
 * same frozen `running` and `waiting` arrays from step to step until a queue changes, and
 * a changed queue keeps the relative order of the requests that stayed. So the states of
 * a queue are kept as an array parallel to it: an unchanged queue costs nothing, and a
 * changed one is matched against its previous version by identity (a short look-ahead
 * skips removed requests), with a map lookup only for the requests that moved in. The
 * ranking schedulers read their per-request state this way every step instead of by id,
 * touching no request they do not need.
 *
 * @module
 */

import type { RequestView } from "../../core/types.ts";

/** Removed requests skipped in a row before a stayer counts as moved in. */
const LOOK_AHEAD = 16;

interface Queue<S> {
  list: readonly RequestView[] | undefined;
  states: S[];
  /** The buffer of the version before, reused for the next one (no allocation per step). */
  spare: S[];
}

const queue = <S>(): Queue<S> => ({ list: undefined, states: [], spare: [] });

/** States of the requests of two queues (0: running, 1: waiting), made on first sight. */
export class QueueStates<S> {
  readonly #byId = new Map<string, S>();
  readonly #make: (req: RequestView) => S;
  readonly #queues: [Queue<S>, Queue<S>] = [queue(), queue()];

  /** `make` creates the state of a request seen for the first time. */
  constructor(make: (req: RequestView) => S) {
    this.#make = make;
  }

  /** The state of one request (made if new). */
  get(req: RequestView): S {
    let s = this.#byId.get(req.id);
    if (s === undefined) {
      s = this.#make(req);
      this.#byId.set(req.id, s);
    }
    return s;
  }

  /** The state of a request already seen, without making one. */
  peek(id: string): S | undefined {
    return this.#byId.get(id);
  }

  /** Forget a request (it finished). */
  delete(id: string): void {
    this.#byId.delete(id);
  }

  /**
   * States parallel to `list`, queue `q`'s current array. The returned array is reused:
   * read it before the next call for the same queue. With `prev`, `prev[i]` is set to the
   * index `list[i]` had in the queue's array of the previous call, or -1 when it was not
   * matched there (it moved in, or stayed behind a long run of removed requests).
   */
  of(list: readonly RequestView[], q: 0 | 1, prev?: Int32Array): readonly S[] {
    const queue = this.#queues[q];
    const n = list.length;
    if (queue.list === list) {
      if (prev) { for (let i = 0; i < n; i++) prev[i] = i; }
      return queue.states;
    }
    const old = queue.list ?? [];
    const oldStates = queue.states;
    const states = queue.spare;
    states.length = n;
    const oldLen = old.length;
    let j = 0;
    for (let i = 0; i < n; i++) {
      const r = list[i];
      let was = -1;
      if (j < oldLen && old[j] === r) was = j;
      else {
        const end = Math.min(oldLen, j + LOOK_AHEAD + 1);
        for (let k = j + 1; k < end; k++) {
          if (old[k] === r) {
            was = k;
            break;
          }
        }
      }
      if (was >= 0) {
        states[i] = oldStates[was];
        j = was + 1;
      } else {
        states[i] = this.get(r);
      }
      if (prev !== undefined) prev[i] = was;
    }
    queue.list = list;
    queue.spare = oldStates;
    queue.states = states;
    return states;
  }
}
