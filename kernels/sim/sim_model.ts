/**
 * A weightless model for simulation: the configuration of a model profile and a trivial
 * byte tokenizer. A simulated executor never reads weights.
 *
 * @module
 */

import type { ChatMessage, Model, ModelWeights, Tokenizer } from "../../core/model/types.ts";
import { configFromProfile, type ModelProfile } from "./models.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes as token ids offset by 16 (ids below are special); good enough for a simulated prompt. */
class ByteTokenizer implements Tokenizer {
  readonly vocabSize: number;
  constructor(vocabSize: number) {
    this.vocabSize = vocabSize;
  }
  encode(text: string, options?: { addBos?: boolean }): number[] {
    const ids = Array.from(encoder.encode(text), (b) => b + 16);
    return options?.addBos ? [1, ...ids] : ids;
  }
  decode(ids: readonly number[]): string {
    const bytes = ids.filter((t) => t >= 16 && t < 272).map((t) => t - 16);
    return decoder.decode(new Uint8Array(bytes));
  }
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): string {
    const body = messages.map((m) => `${m.role}: ${m.content}\n`).join("");
    return options?.addGenerationPrompt ? body + "assistant: " : body;
  }
}

/** A model with the profile's dimensions and no weights. */
export function simModel(profile: ModelProfile): Model {
  const config = configFromProfile(profile);
  return {
    name: profile.name,
    config,
    tokenizer: new ByteTokenizer(config.vocabSize),
    source: `profile(${profile.name})`,
    dtype: "bf16",
    weights(): Promise<ModelWeights> {
      return Promise.reject(
        new Error(`${profile.name} is a simulated model profile with no weights`),
      );
    },
  };
}
