import assert from "node:assert/strict";
import fc from "fast-check";
import { BOS_ID, ByteTokenizer, EOS_ID } from "../../../core/model/byte_tokenizer.ts";

Deno.test("byte tokenizer round-trips any well-formed string", () => {
  const tok = new ByteTokenizer();
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 64 }), (s) => {
      fc.pre(s.isWellFormed());
      const ids = tok.encode(s);
      assert.equal(ids.length, new TextEncoder().encode(s).length);
      assert.ok(ids.every((id) => id >= 3 && id < 259));
      assert.equal(tok.decode(ids), s);
    }),
    { numRuns: 300 },
  );
});

Deno.test("byte tokenizer: ids, BOS, special tokens and bad UTF-8", () => {
  const tok = new ByteTokenizer();
  assert.equal(tok.vocabSize, 259);
  assert.deepEqual(tok.encode("A"), [65 + 3]);
  assert.deepEqual(tok.encode("hi", { addBos: true }), [BOS_ID, 104 + 3, 105 + 3]);
  assert.equal(tok.decode([BOS_ID, 104 + 3, EOS_ID, 0, 105 + 3]), "hi");
  const euro = tok.encode("€"); // three bytes
  assert.equal(euro.length, 3);
  assert.equal(tok.decode(euro.slice(0, 2)), "\uFFFD");
  assert.equal(tok.decode([0xff + 3]), "\uFFFD");
  const big = new ByteTokenizer(32000);
  assert.equal(big.vocabSize, 32000);
  assert.equal(big.decode([104 + 3, 300, 31999, 105 + 3]), "hi");
  assert.throws(() => new ByteTokenizer(100), RangeError);
});

Deno.test("byte tokenizer's plain chat template", () => {
  const tok = new ByteTokenizer();
  const text = tok.applyChatTemplate([
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hello" },
  ]);
  assert.equal(text, "<|system|>\nBe brief.\n<|user|>\nHello\n<|assistant|>\n");
  assert.equal(
    tok.applyChatTemplate([{ role: "user", content: "x" }], { addGenerationPrompt: false }),
    "<|user|>\nx\n",
  );
});
