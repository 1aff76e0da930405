import assert from "node:assert/strict";
import { programFcfs } from "../../../policies/continuum/program_fcfs.ts";
import type { Scheduler } from "../../../core/slots.ts";
import type { EngineView, RequestView } from "../../../core/types.ts";

function scheduler(): Scheduler {
  return programFcfs.create({}, {} as never) as Scheduler;
}

function req(
  id: string,
  arrivalTime: number,
  programId?: string,
  numPreemptions = 0,
): RequestView {
  return { id, arrivalTime, programId, numPreemptions } as unknown as RequestView;
}

function view(
  waiting: RequestView[],
  running: RequestView[] = [],
  pinned = new Set<string>(),
): EngineView {
  return {
    waiting,
    running,
    kv: { pinned: (pid: string) => pinned.has(pid) },
  } as unknown as EngineView;
}

const ids = (rs: readonly RequestView[]) => rs.map((r) => r.id);

Deno.test("program-fcfs: a returning turn of an older program goes before newer programs", () => {
  const s = scheduler();
  const a0 = req("a0", 0, "a"), b0 = req("b0", 5, "b");
  s.onArrival?.(a0, 0);
  s.onArrival?.(b0, 5);
  const c0 = req("c0", 8, "c"), a1 = req("a1", 9, "a"), solo = req("solo", 1);
  for (const r of [c0, a1, solo]) s.onArrival?.(r, r.arrivalTime);
  const order = s.order(view([c0, a1, solo]));
  assert.deepEqual(ids(order.waiting), ["a1", "solo", "c0"], "program a arrived at 0");
});

Deno.test("program-fcfs: preempted requests first, then pinned programs, then program arrival", () => {
  const s = scheduler();
  const rs = [
    req("new", 3, "n"),
    req("pinned", 9, "p"),
    req("old", 1, "o"),
    req("back", 7, "b", 1),
  ];
  s.onArrival?.(req("p0", 2, "p"), 2);
  for (const r of rs) s.onArrival?.(r, r.arrivalTime);
  const waiting = [rs[0], rs[1], rs[2], rs[3]];
  assert.deepEqual(ids(s.order(view(waiting, [], new Set(["p"]))).waiting), [
    "back",
    "pinned",
    "old",
    "new",
  ]);
  // The same queue once the pin is gone: program arrival order (p arrived at 2).
  assert.deepEqual(ids(s.order(view(waiting)).waiting), ["back", "old", "pinned", "new"]);
});

Deno.test("program-fcfs: the newest program runs last, so it is the first preemption victim", () => {
  const s = scheduler();
  const x0 = req("x0", 0, "x"), y0 = req("y0", 1, "y");
  s.onArrival?.(x0, 0);
  s.onArrival?.(y0, 1);
  const y1 = req("y1", 4, "y"), x1 = req("x1", 6, "x"), z = req("z", 2);
  const running = [y1, z, x1];
  assert.deepEqual(ids(s.order(view([], running)).running), ["x1", "y1", "z"]);
});

Deno.test("program-fcfs: a program is forgotten after its last turn", () => {
  const s = scheduler();
  s.onArrival?.(req("q0", 0, "q"), 0);
  const last = { ...req("q1", 3, "q"), turn: { last: true } } as RequestView;
  s.onFinish?.(last, "stop", 4);
  // A new program reusing the id starts afresh: it ranks by its own arrival.
  const again = req("q2", 10, "q"), other = req("o", 5, "o");
  s.onArrival?.(again, 10);
  s.onArrival?.(other, 5);
  assert.deepEqual(ids(s.order(view([again, other])).waiting), ["o", "q2"]);
});
