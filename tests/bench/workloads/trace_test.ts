import assert from "node:assert/strict";
import {
  parseCsv,
  parseJsonl,
  parseShareGptJson,
  toJsonl,
} from "../../../bench/workloads/trace.ts";
import { generateWorkload } from "../../../bench/workloads/generate.ts";
import { UsageError } from "../../../core/errors.ts";

const usage = (re: RegExp) => (e: unknown) => e instanceof UsageError && re.test(e.message);

Deno.test("trace: JSONL round-trips a workload", () => {
  const w = generateWorkload({ workload: "arxiv", requests: 50, seed: 1 });
  assert.deepEqual(parseJsonl(toJsonl(w)), w);
});

Deno.test("trace: JSONL accepts snake_case keys and token arrays", () => {
  const r = parseJsonl(
    '{"prompt_len": 5, "output_len": 7, "arrival_time": 1.5}\n\n{"promptTokens": [20, 21], "outputLength": 3}\n',
  );
  assert.equal(r.length, 2);
  assert.equal(r[0].promptLength, 5);
  assert.equal(r[0].arrivalTime, 1.5);
  assert.equal(r[1].promptLength, 2);
  assert(Number.isNaN(r[1].arrivalTime));
});

Deno.test("trace: a malformed JSONL line names the line and the reason", () => {
  assert.throws(
    () => parseJsonl('{"promptLength": 3, "outputLength": 2}\n{oops', "t.jsonl"),
    usage(/t\.jsonl line 2: not valid JSON/),
  );
  assert.throws(
    () => parseJsonl('{"promptLength": 3}', "t.jsonl"),
    usage(/line 1: outputLength must be a positive integer/),
  );
  assert.throws(
    () => parseJsonl('{"promptLength": 3, "outputLength": 2, "arrivalTime": -1}', "t.jsonl"),
    usage(/line 1: arrivalTime/),
  );
});

Deno.test("trace: Vidur CSV with and without arrivals", () => {
  const a = parseCsv("num_prefill_tokens,num_decode_tokens,arrived_at\n100,20,0.5\n7,3,1\n");
  assert.deepEqual(a.map((r) => [r.promptLength, r.outputLength, r.arrivalTime]), [[100, 20, 0.5], [
    7,
    3,
    1,
  ]]);
  const b = parseCsv("num_decode_tokens,num_prefill_tokens\n4,9\n");
  assert.equal(b[0].promptLength, 9);
  assert.throws(() => parseCsv("a,b\n1,2\n", "v.csv"), usage(/v\.csv line 1: the header/));
  assert.throws(
    () => parseCsv("num_prefill_tokens,num_decode_tokens\n1,x\n", "v.csv"),
    usage(/v\.csv line 2: num_decode_tokens/),
  );
});

Deno.test("trace: vLLM ShareGPT JSON, first two turns, vLLM's filter", () => {
  const data = [
    {
      id: "a",
      conversations: [{ from: "human", value: "x".repeat(40) }, {
        from: "gpt",
        value: "y".repeat(80),
      }],
    },
    { id: "b", conversations: [{ from: "human", value: "only one turn" }] },
    {
      id: "c",
      conversations: [{ from: "human", value: "hi" }, { from: "gpt", value: "y".repeat(80) }],
    },
  ];
  const r = parseShareGptJson(JSON.stringify(data));
  assert.deepEqual(r.map((x) => [x.id, x.promptLength, x.outputLength]), [["a", 10, 20]]);
  assert.throws(
    () => parseShareGptJson('{"a": 1}', "s.json"),
    usage(/s\.json: expected a JSON array/),
  );
  assert.throws(
    () => parseShareGptJson('[{"conversations": 3}]', "s.json"),
    usage(/s\.json entry 0/),
  );
});
