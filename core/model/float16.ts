/**
 * Conversions between f32 and the 16-bit float formats of model files: IEEE half (F16)
 * and bfloat16 (BF16). Narrowing rounds to nearest, ties to even.
 *
 * @module
 */

let halfTable: Float32Array | undefined;

/** f32 value of every f16 bit pattern (built once, 256 KiB). */
function f16Table(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24; // zero and subnormals
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity;
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  halfTable = table;
  return table;
}

/** Widen f16 bit patterns to f32. */
export function f16ToF32(
  src: Uint16Array,
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  const table = f16Table();
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  return out;
}

/** Widen bf16 bit patterns to f32 (a bf16 is the top half of an f32). */
export function bf16ToF32(
  src: Uint16Array,
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The f16 bit pattern nearest to `value` (ties to even; overflow gives infinity). */
export function f32ToF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf, NaN
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Subnormal half (or zero): shift the mantissa with its implicit 1 into place.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    const round = rest > mid || (rest === mid && (half & 1)) ? 1 : 0;
    return sign | (half + round);
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  const round = rest > 0x1000 || (rest === 0x1000 && (half & 1)) ? 1 : 0;
  return sign | (half + round); // a carry into the exponent is the correct rounding
}

/** The bf16 bit pattern nearest to `value` (ties to even). */
export function f32ToBf16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return (x >>> 16) | 0x40; // NaN
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}
