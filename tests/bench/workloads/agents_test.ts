import assert from "node:assert/strict";
import { AGENT_WORKLOADS, generateAgentWorkload } from "../../../bench/workloads/agents.ts";
import { parseJsonl, toJsonl } from "../../../bench/workloads/trace.ts";
import type { WorkloadRequest } from "../../../bench/workloads/types.ts";
import { UsageError } from "../../../core/errors.ts";

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const sd = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));

function byProgram(reqs: WorkloadRequest[]): WorkloadRequest[][] {
  const m = new Map<string, WorkloadRequest[]>();
  for (const r of reqs) {
    const list = m.get(r.programId!) ?? [];
    list.push(r);
    m.set(r.programId!, list);
  }
  return [...m.values()];
}

Deno.test("agents: every program is a chain of turns whose contexts grow", () => {
  for (const workload of Object.keys(AGENT_WORKLOADS)) {
    const reqs = generateAgentWorkload({
      workload,
      programs: 200,
      rate: 0.1,
      seed: 1,
      maxModelLen: 32768,
    });
    const programs = byProgram(reqs);
    assert.equal(programs.length, 200);
    for (const turns of programs) {
      turns.forEach((t, k) => {
        assert.equal(t.toolTime === undefined, k === 0, "only follow-ups have a tool time");
        assert.equal(t.turn?.last === true, k === turns.length - 1);
        if (k < turns.length - 1) assert.ok(t.turn?.tool, "every other turn calls a tool");
        assert.ok(t.promptLength + t.outputLength <= 32768, "fits the context");
        if (k > 0) {
          const prev = turns[k - 1];
          assert.ok(
            t.promptLength >= prev.promptLength + prev.outputLength,
            "extends the last turn",
          );
          assert.ok(t.toolTime! > 0);
        }
      });
    }
  }
});

Deno.test("agents: swe-agent follows the trace statistics", () => {
  const reqs = generateAgentWorkload({
    workload: "swe-agent",
    programs: 2000,
    rate: 0.1,
    seed: 2,
    maxModelLen: 131072,
  });
  const programs = byProgram(reqs);
  const turns = programs.map((p) => p.length);
  assert.ok(Math.abs(mean(turns) - 10.9) < 0.3, `turns ${mean(turns)}`);
  assert.ok(Math.abs(sd(turns) - 2.1) < 0.3, `turn sd ${sd(turns)}`);
  // "Tokens per program" read as the prompt tokens of all turns together.
  const tokens = programs.map((p) => p.reduce((s, t) => s + t.promptLength, 0));
  assert.ok(Math.abs(mean(tokens) / 70126 - 1) < 0.05, `tokens ${mean(tokens)}`);
  const pauses = reqs.flatMap((r) => r.toolTime === undefined ? [] : [r.toolTime]);
  assert.ok(Math.abs(mean(pauses) / 0.925 - 1) < 0.15, `pause mean ${mean(pauses)}`);
  // Heavy tail: the slowest tenth of the calls take most of the time.
  const sorted = pauses.slice().sort((a, b) => a - b);
  const top = sorted.slice(Math.floor(sorted.length * 0.9)).reduce((s, x) => s + x, 0);
  assert.ok(top / sorted.reduce((s, x) => s + x, 0) > 0.5);
  // Programs arrive as a Poisson process at the rate.
  const firsts = programs.map((p) => p[0].arrivalTime);
  assert.ok(Math.abs(firsts.length / firsts.at(-1)! / 0.1 - 1) < 0.1);
});

Deno.test("agents: the final-context reading grows contexts about 6.4k tokens a turn", () => {
  const reqs = generateAgentWorkload({
    workload: "swe-agent",
    programs: 500,
    rate: 0.1,
    seed: 3,
    tokensPerProgram: "final",
  });
  const finals = byProgram(reqs).map((p) => p.at(-1)!.promptLength + p.at(-1)!.outputLength);
  assert.ok(Math.abs(mean(finals) / 70126 - 1) < 0.05, `final ${mean(finals)}`);
});

Deno.test("agents: seeded, round-trips through JSONL, and checks its inputs", () => {
  const o = { workload: "web-agent", programs: 20, rate: 1, seed: 9 };
  const a = generateAgentWorkload(o);
  assert.deepEqual(generateAgentWorkload(o), a);
  assert.notDeepEqual(generateAgentWorkload({ ...o, seed: 10 }), a);
  assert.deepEqual(parseJsonl(toJsonl(a)), a);
  assert.throws(
    () => generateAgentWorkload({ ...o, workload: "chat" }),
    (e) => e instanceof UsageError && /known: swe-agent, web-agent/.test(e.message),
  );
  assert.throws(() => generateAgentWorkload({ ...o, programs: 0 }), UsageError);
  assert.throws(() => generateAgentWorkload({ ...o, rate: -1 }), UsageError);
});

Deno.test("agents: repeating a program multiplies its turns and keeps its final context", () => {
  const o = { workload: "swe-agent", programs: 30, rate: 0.1, seed: 4 };
  const once = byProgram(generateAgentWorkload(o));
  const thrice = byProgram(generateAgentWorkload({ ...o, repeat: 3 }));
  once.forEach((p, i) => {
    const q = thrice[i];
    assert.equal(q.length, 3 * p.length);
    assert.equal(q[0].arrivalTime, p[0].arrivalTime);
    const final = (r: WorkloadRequest[]) => r.at(-1)!.promptLength;
    assert.ok(Math.abs(final(q) / final(p) - 1) < 0.05, `${final(q)} vs ${final(p)}`);
    // The same tools and pauses, three times over.
    for (let k = 1; k + p.length < q.length - 1; k++) {
      assert.equal(q[k + p.length].toolTime, q[k].toolTime);
      assert.deepEqual(q[k + p.length].turn, q[k].turn);
    }
    q.forEach((t, k) => assert.equal(t.turn?.last === true, k === q.length - 1));
  });
  assert.throws(() => generateAgentWorkload({ ...o, repeat: 0 }), UsageError);
});
