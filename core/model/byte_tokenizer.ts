/**
 * A byte-level tokenizer: every UTF-8 byte is one token. Ids 0 `<unk>`, 1 `<s>` (BOS),
 * 2 `</s>` (EOS), then 3..258 for the bytes 0..255.
 *
 * @module
 */

import type { ChatMessage, Tokenizer } from "./types.ts";
import { plainChatTemplate } from "./chat_template.ts";

/** Id of `<unk>`. */
export const UNK_ID = 0;
/** Id of `<s>`, the beginning of a sequence. */
export const BOS_ID = 1;
/** Id of `</s>`, the end of a sequence. */
export const EOS_ID = 2;
/** Id of byte 0; byte `b` is `BYTE_OFFSET + b`. */
export const BYTE_OFFSET = 3;
/** Ids the byte tokenizer itself uses. */
export const BYTE_VOCAB_SIZE = 259;

const encoder = new TextEncoder();

/** UTF-8 bytes as tokens; decoding skips special ids and ids beyond the byte range. */
export class ByteTokenizer implements Tokenizer {
  /** The model's vocabulary size (at least 259; ids above 258 decode to nothing). */
  readonly vocabSize: number;

  /** `vocabSize` is the model's, when larger than the byte range. */
  constructor(vocabSize: number = BYTE_VOCAB_SIZE) {
    if (!Number.isInteger(vocabSize) || vocabSize < BYTE_VOCAB_SIZE) {
      throw new RangeError(`byte tokenizer needs a vocabulary of at least ${BYTE_VOCAB_SIZE}`);
    }
    this.vocabSize = vocabSize;
  }

  /** One token per UTF-8 byte, after `<s>` when `addBos`. */
  encode(text: string, options?: { addBos?: boolean }): number[] {
    const bytes = encoder.encode(text);
    const ids: number[] = options?.addBos ? [BOS_ID] : [];
    for (const b of bytes) ids.push(b + BYTE_OFFSET);
    return ids;
  }

  /** The text of the byte tokens; invalid or partial UTF-8 becomes U+FFFD. */
  decode(ids: readonly number[]): string {
    const bytes = new Uint8Array(ids.length);
    let n = 0;
    for (const id of ids) {
      if (id >= BYTE_OFFSET && id < BYTE_VOCAB_SIZE) bytes[n++] = id - BYTE_OFFSET;
    }
    return new TextDecoder().decode(bytes.subarray(0, n));
  }

  /** The plain template: `<|role|>\ncontent\n` per message, then `<|assistant|>\n`. */
  applyChatTemplate(
    messages: ChatMessage[],
    options?: { addGenerationPrompt?: boolean },
  ): string {
    return plainChatTemplate(messages, options);
  }
}
