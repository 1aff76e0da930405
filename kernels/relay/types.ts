/**
 * What an executor needs from the engine to run RelayAttention: the optional
 * `Batch.relay` (the step's shared prompt) and `BatchSequence.prefixed` (the sequence's
 * positions start after that prompt), named here for the kernels.
 *
 * Contract (relay spec, 1(b)):
 * - `relay.tokens` is the shared prompt (BOS included); its KV lives in one contiguous
 *   buffer per layer that the executor fills once per `relay.id` and keeps.
 * - A sequence with `prefixed: true` has positions starting at `tokens.length`; its
 *   `startPos` is absolute (already counts the prompt) and its `blockTable` covers only its
 *   own positions, slot 0 holding position `tokens.length`.
 *
 * @module
 */

import type { Batch, BatchSequence } from "../../core/types.ts";

/** The shared system prompt of a step. */
export type RelayPrefix = NonNullable<Batch["relay"]>;

/** A batch sequence that may sit after the shared prompt. */
export type RelaySequence = BatchSequence;

/** A batch with an optional shared prompt. */
export type RelayBatch = Batch;
