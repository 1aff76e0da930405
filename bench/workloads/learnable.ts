/**
 * The `learnable` workload: prompts whose output length follows from what they ask for,
 * so that a ranker can learn the order from the prompt's tokens alone. Each prompt is an
 * instruction from one of a dozen task families (one word, yes or no, one sentence, a
 * list of N items, N paragraphs, an essay, a translation or a summary whose length
 * follows the quoted text, code, a story...) in one of several phrasings, with topic
 * words, chatty filler and sometimes a context passage, encoded with the byte vocabulary
 * (`tiny` and `small` presets). The true length is the family's base length for the
 * prompt's parameters, times log-normal noise, with a small share of runaway
 * generations that hit the cap: none of that noise is visible in the prompt, so no
 * ranker reaches a Kendall tau of 1.
 *
 * @module
 */

import { Rng } from "../../kernels/sim/rng.ts";
import { ByteTokenizer } from "../../core/model/byte_tokenizer.ts";
import { type ArrivalSpec, arrivalTimes } from "./arrivals.ts";
import type { WorkloadRequest } from "./types.ts";
import { checkCount } from "./generate.ts";

/** Options of {@link generateLearnable}. */
export interface LearnableOptions {
  /** Number of requests. */
  requests: number;
  /** Seed of prompts, lengths and arrivals. */
  seed: number;
  /** Arrival process (default: everything at time 0). */
  arrival?: ArrivalSpec;
  /** The generation cap the engine sees, and where runaway outputs stop (default 4096). */
  maxTokens?: number;
  /** Share of runaway outputs that run to the cap (default 0.02). */
  runaway?: number;
  /** Sigma of the log-normal noise on lengths (default 0.3). */
  noise?: number;
  /** Longest prompt in tokens (default 1024, as the paper's filter). */
  maxPromptTokens?: number;
}

/** A generated request with its prompt text. */
export interface LearnableRequest extends WorkloadRequest {
  /** The prompt as text (its bytes are the prompt tokens). */
  text: string;
  /** The task family (for analysis only; never shown to a policy). */
  family: string;
  /** Prompt token ids (byte vocabulary, BOS first). */
  promptTokens: number[];
}

const TOPICS = [
  "volcanoes",
  "the roman empire",
  "quantum computing",
  "sourdough bread",
  "black holes",
  "jazz music",
  "honey bees",
  "the stock market",
  "machine learning",
  "climate change",
  "chess openings",
  "ancient egypt",
  "electric cars",
  "the human heart",
  "coral reefs",
  "renaissance art",
  "public transport",
  "coffee",
  "photosynthesis",
  "the french revolution",
  "mountain climbing",
  "solar panels",
  "dinosaurs",
  "the internet",
  "marathon training",
  "origami",
  "tea ceremonies",
  "the moon landing",
  "vaccines",
  "blockchains",
  "rain forests",
  "submarines",
  "opera",
  "urban gardening",
  "glaciers",
  "the printing press",
];
const THINGS = ["facts", "ideas", "tips", "reasons", "examples", "questions", "steps", "myths"];
const LANGS = ["python", "rust", "javascript", "go", "c", "haskell"];
const CODE_TASKS = [
  "reverses a linked list",
  "parses a csv line",
  "checks if a number is prime",
  "merges two sorted arrays",
  "computes a moving average",
  "validates an email address",
  "finds the shortest path in a grid",
  "counts word frequencies",
];
const WORDS = [
  "the",
  "a",
  "of",
  "and",
  "to",
  "in",
  "is",
  "was",
  "for",
  "on",
  "with",
  "as",
  "by",
  "at",
  "river",
  "house",
  "light",
  "small",
  "green",
  "quickly",
  "morning",
  "city",
  "people",
  "time",
  "water",
  "old",
  "new",
  "work",
  "found",
  "made",
  "long",
  "around",
  "between",
  "under",
  "children",
  "story",
  "market",
  "window",
  "silver",
  "road",
  "music",
  "paper",
  "stone",
];
const OPENERS = [
  "",
  "",
  "",
  "hi! ",
  "hey, ",
  "please help. ",
  "quick question: ",
  "ok so ",
  "hello. ",
];
const CLOSERS = ["", "", "", " thanks!", " thank you.", " :)", " please.", " asap", " cheers"];
const LANGUAGES = ["french", "german", "spanish", "italian", "japanese"];

interface Task {
  family: string;
  text: string;
  /** Base output length in tokens before noise. */
  base: number;
}

function pick<T>(rng: Rng, a: readonly T[]): T {
  return a[Math.floor(rng.next() * a.length)];
}

function sentence(rng: Rng, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(pick(rng, WORDS));
  return out.join(" ") + ".";
}

function passage(rng: Rng, words: number): string {
  const out: string[] = [];
  let left = words;
  while (left > 0) {
    const n = Math.min(left, 6 + Math.floor(rng.next() * 10));
    out.push(sentence(rng, n));
    left -= n;
  }
  return out.join(" ");
}

// Each family: how the prompt reads and the length it calls for. Weights give a
// long-tailed mix of short and long answers, as chat traffic has.
const FAMILIES: { weight: number; make: (rng: Rng) => Task }[] = [
  {
    weight: 8,
    make: (rng) => {
      const t = pick(rng, TOPICS);
      const text = pick(rng, [
        `Answer with one word: what is the main thing about ${t}?`,
        `In a single word, describe ${t}.`,
        `One word only: ${t}?`,
      ]);
      return { family: "one-word", text, base: 2 + rng.int(0, 2) };
    },
  },
  {
    weight: 8,
    make: (rng) => {
      const t = pick(rng, TOPICS);
      const text = pick(rng, [
        `Reply yes or no: is ${t} interesting?`,
        `Yes or no, have people studied ${t}?`,
        `Just say yes or no. Is ${t} older than 100 years?`,
      ]);
      return { family: "yes-no", text, base: 1 + rng.int(0, 1) };
    },
  },
  {
    weight: 10,
    make: (rng) => {
      const t = pick(rng, TOPICS);
      const text = pick(rng, [
        `In one sentence, what is ${t}?`,
        `Give me a one-sentence definition of ${t}.`,
        `Briefly, in a sentence: why does ${t} matter?`,
      ]);
      return { family: "one-sentence", text, base: 18 + rng.int(0, 20) };
    },
  },
  {
    weight: 12,
    make: (rng) => {
      const n = rng.int(3, 25);
      const t = pick(rng, TOPICS), thing = pick(rng, THINGS);
      const text = pick(rng, [
        `List ${n} ${thing} about ${t}.`,
        `Give me ${n} ${thing} on ${t}, as a numbered list.`,
        `Can you write a list of ${n} ${thing} related to ${t}?`,
      ]);
      return { family: "list", text, base: n * 12 };
    },
  },
  {
    weight: 10,
    make: (rng) => {
      const n = rng.int(1, 6);
      const t = pick(rng, TOPICS);
      const text = pick(rng, [
        `Write ${n} paragraph${n > 1 ? "s" : ""} about ${t}.`,
        `Explain ${t} in ${n} paragraph${n > 1 ? "s" : ""}.`,
        `I need ${n} paragraph${n > 1 ? "s" : ""} of text on ${t}.`,
      ]);
      return { family: "paragraphs", text, base: n * 120 };
    },
  },
  {
    weight: 5,
    make: (rng) => {
      const t = pick(rng, TOPICS);
      const text = pick(rng, [
        `Write a detailed essay on ${t}, with an introduction, several sections and a conclusion.`,
        `Compose a long, thorough essay about ${t}.`,
        `Essay assignment: ${t}. Be comprehensive.`,
      ]);
      return { family: "essay", text, base: 1100 };
    },
  },
  {
    weight: 8,
    make: (rng) => {
      const words = rng.int(5, 120);
      const lang = pick(rng, LANGUAGES);
      const text = pick(rng, [
        `Translate into ${lang}: ${passage(rng, words)}`,
        `Please translate the following text to ${lang}. ${passage(rng, words)}`,
      ]);
      return { family: "translate", text, base: Math.round(words * 1.4) };
    },
  },
  {
    weight: 8,
    make: (rng) => {
      const n = rng.int(1, 8);
      const ctx = passage(rng, rng.int(40, 160));
      const text = pick(rng, [
        `Summarize the text below in ${n} sentence${n > 1 ? "s" : ""}.\n\n${ctx}`,
        `${ctx}\n\nSummarize the above in ${n} sentence${n > 1 ? "s" : ""}.`,
      ]);
      return { family: "summary", text, base: n * 22 };
    },
  },
  {
    weight: 8,
    make: (rng) => {
      const lang = pick(rng, LANGS), task = pick(rng, CODE_TASKS);
      const tests = rng.next() < 0.5;
      const text = pick(rng, [
        `Write a ${lang} function that ${task}.${tests ? " Include unit tests." : ""}`,
        `Implement, in ${lang}, code that ${task}.${tests ? " Add tests too." : ""}`,
      ]);
      return { family: "code", text, base: tests ? 380 : 180 };
    },
  },
  {
    weight: 6,
    make: (rng) => {
      const t = pick(rng, TOPICS);
      const text = pick(rng, [
        `Tell me a story about ${t}.`,
        `Write a short story involving ${t}.`,
        `Once upon a time... continue a story about ${t}.`,
      ]);
      // Stories vary a lot on their own: extra spread below.
      return { family: "story", text, base: 650 };
    },
  },
  {
    weight: 7,
    make: (rng) => {
      const t = pick(rng, TOPICS);
      const text = pick(rng, [
        `Explain ${t} to a ten year old.`,
        `How would you explain ${t} to a child?`,
      ]);
      return { family: "explain", text, base: 170 };
    },
  },
  {
    weight: 6,
    make: (rng) => {
      const t = pick(rng, TOPICS);
      const text = pick(rng, [
        `What do you think about ${t}?`,
        `Thoughts on ${t}?`,
        `${t} - discuss.`,
      ]);
      // Open questions: no length cue beyond the family, wide spread.
      return { family: "open", text, base: 300 };
    },
  },
];
const TOTAL_WEIGHT = FAMILIES.reduce((s, f) => s + f.weight, 0);

function drawTask(rng: Rng): Task {
  let u = rng.next() * TOTAL_WEIGHT;
  for (const f of FAMILIES) {
    u -= f.weight;
    if (u < 0) return f.make(rng);
  }
  return FAMILIES[FAMILIES.length - 1].make(rng);
}

/** Generate the workload: prompts (text and byte-vocabulary ids), true lengths, arrivals. */
export function generateLearnable(o: LearnableOptions): LearnableRequest[] {
  checkCount(o.requests);
  const maxTokens = o.maxTokens ?? 4096;
  const runaway = o.runaway ?? 0.02;
  const noise = o.noise ?? 0.3;
  const maxPrompt = o.maxPromptTokens ?? 1024;
  const rng = new Rng(o.seed);
  const prompts = rng.fork(1), lengths = rng.fork(2);
  const times = o.arrival ? arrivalTimes(o.arrival, o.requests, rng.fork(3)) : undefined;
  const tok = new ByteTokenizer();
  const out: LearnableRequest[] = [];
  for (let i = 0; i < o.requests; i++) {
    const task = drawTask(prompts);
    // Chatty filler and, sometimes, an unrelated context sentence: noise for the ranker.
    let text = pick(prompts, OPENERS) + task.text + pick(prompts, CLOSERS);
    if (prompts.next() < 0.3) text = `${sentence(prompts, prompts.int(4, 14))} ${text}`;
    let tokens = tok.encode(text, { addBos: true });
    if (tokens.length > maxPrompt) tokens = tokens.slice(0, maxPrompt);
    const sigma = task.family === "story" || task.family === "open" ? noise + 0.4 : noise;
    let len = Math.round(task.base * Math.exp(sigma * lengths.normal()));
    if (lengths.next() < runaway) len = maxTokens;
    len = Math.max(1, Math.min(maxTokens, len));
    out.push({
      id: `l${i}`,
      arrivalTime: times ? times[i] : 0,
      promptLength: tokens.length,
      outputLength: len,
      maxTokens,
      promptTokens: tokens,
      text,
      family: task.family,
    });
  }
  return out;
}
