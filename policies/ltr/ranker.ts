/**
 * The ranking predictor: a linear scorer over prompt features, where a higher score means
 * a shorter expected output. Saved as JSON (`train-ranker --out`) and loaded by the `ltr`
 * scheduler (`--scheduler.ranker FILE`).
 *
 * @module
 */

import type { TokenIds } from "../../core/types.ts";
import { UsageError } from "../../core/errors.ts";
import { type FeatureConfig, Featurizer } from "./features.ts";

/** What a ranker file holds. */
export interface RankerFile {
  /** Always "baton-ltr-ranker". */
  format: "baton-ltr-ranker";
  /** File format version (1). */
  version: 1;
  /** How prompts become features. */
  features: FeatureConfig;
  /** Slots with a non-zero weight. */
  index: number[];
  /** Their weights. */
  weight: number[];
  /** Facts about training (examples, held-out Kendall tau, options). */
  training?: Record<string, unknown>;
}

/** A linear ranker: score = weights . features(prompt). */
export class LinearRanker {
  /** Feature extraction. */
  readonly featurizer: Featurizer;
  /** Dense weights, one per feature slot. */
  readonly weights: Float32Array;
  /** Facts about training, kept in the file. */
  training: Record<string, unknown>;

  /** An untrained ranker (all weights 0) unless `weights` is given. */
  constructor(
    features: FeatureConfig,
    weights?: Float32Array,
    training: Record<string, unknown> = {},
  ) {
    this.featurizer = new Featurizer(features);
    this.weights = weights ?? new Float32Array(features.dim);
    if (this.weights.length !== features.dim) {
      throw new RangeError(
        `ranker has ${this.weights.length} weights for ${features.dim} features`,
      );
    }
    this.training = training;
  }

  /** Higher means a shorter expected output. */
  score(promptTokens: TokenIds): number {
    return this.featurizer.dot(promptTokens, this.weights);
  }

  /** The file form. */
  toJSON(): RankerFile {
    const index: number[] = [], weight: number[] = [];
    for (let i = 0; i < this.weights.length; i++) {
      if (this.weights[i] !== 0) {
        index.push(i);
        weight.push(Number(this.weights[i].toPrecision(6)));
      }
    }
    return {
      format: "baton-ltr-ranker",
      version: 1,
      features: { ...this.featurizer.config },
      index,
      weight,
      training: this.training,
    };
  }

  /** Read the file form; a malformed file is a UsageError naming `source`. */
  static fromJSON(data: unknown, source = "ranker"): LinearRanker {
    const bad = (why: string): never => {
      throw new UsageError(
        `${source} is not a ranker file (${why}); write one with train-ranker`,
        "ranker",
      );
    };
    const o = data as Partial<RankerFile>;
    if (!o || typeof o !== "object" || o.format !== "baton-ltr-ranker") {
      bad('no "format": "baton-ltr-ranker"');
    }
    if (o.version !== 1) bad(`version ${o.version} is not 1`);
    const f = o.features;
    if (
      !f || !Number.isInteger(f.dim) || !Number.isInteger(f.maxN) || !Number.isInteger(f.headTokens)
    ) {
      bad("features need integer dim, maxN and headTokens");
    }
    if (!Array.isArray(o.index) || !Array.isArray(o.weight) || o.index.length !== o.weight.length) {
      bad("index and weight must be arrays of equal length");
    }
    let ranker: LinearRanker | undefined;
    try {
      ranker = new LinearRanker(f!, undefined, o.training ?? {});
    } catch (e) {
      bad((e as Error).message);
    }
    const w = ranker!.weights;
    for (let k = 0; k < o.index!.length; k++) {
      const i = o.index![k], v = o.weight![k];
      if (
        !Number.isInteger(i) || i < 0 || i >= w.length || typeof v !== "number" ||
        !Number.isFinite(v)
      ) {
        bad(`entry ${k} is not a slot index with a finite weight`);
      }
      w[i] = v;
    }
    return ranker!;
  }
}

/** Load a ranker file. */
export async function loadRanker(path: string): Promise<LinearRanker> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`cannot read ranker file ${path}: ${(e as Error).message}`, "ranker");
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UsageError(`ranker file ${path} is not valid JSON`, "ranker");
  }
  return LinearRanker.fromJSON(data, `ranker file ${path}`);
}
