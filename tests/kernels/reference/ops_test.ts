import assert from "node:assert/strict";
import {
  matmul,
  rmsnorm,
  rope,
  ropeFrequencies,
  softmax,
  swiglu,
} from "../../../kernels/reference/ops.ts";

function close(a: ArrayLike<number>, b: number[], tol = 1e-6): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) < tol, `${i}: ${a[i]} vs ${b[i]}`);
  }
}

Deno.test("matmul uses the [out, in] row-major layout over several rows", () => {
  const w = Float32Array.of(1, 2, 3, 4, 5, 6); // 2 outputs x 3 inputs
  const x = Float32Array.of(1, 0, -1, 2, 1, 0); // 2 rows
  const out = new Float32Array(4);
  matmul(out, x, w, 2, 3, 2);
  close(out, [1 - 3, 4 - 6, 2 + 2, 8 + 5]);
});

Deno.test("rmsnorm scales each row to unit RMS times the weight", () => {
  const out = new Float32Array(4);
  rmsnorm(out, Float32Array.of(3, 4, 0, 2), Float32Array.of(1, 2), 2, 2, 0);
  const r1 = Math.sqrt((9 + 16) / 2);
  close(out, [3 / r1, 8 / r1, 0, 2 * Math.SQRT2]);
});

Deno.test("rope rotates the pairs (i, i + headDim/2) (Hugging Face rotate-half)", () => {
  const freqs = ropeFrequencies(4, 10000);
  close(freqs, [1, 0.01]);
  const v = Float32Array.of(9, 1, 2, 3, 4); // one head at offset 1
  rope(v, 1, 1, 4, 1, freqs);
  const [c0, s0, c1, s1] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
  close(v, [9, 1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1], 1e-6);
  // Position 0 is the identity.
  const w = Float32Array.of(1, 2, 3, 4);
  rope(w, 0, 1, 4, 0, freqs);
  close(w, [1, 2, 3, 4]);
});

Deno.test("softmax and SwiGLU", () => {
  const s = Float64Array.of(0, Math.log(3), 5);
  softmax(s, 2); // only the first two
  close(s, [0.25, 0.75, 5]);
  const gate = Float32Array.of(0, 2);
  swiglu(gate, Float32Array.of(5, 3), 2);
  close(gate, [0, (2 / (1 + Math.exp(-2))) * 3]);
});
