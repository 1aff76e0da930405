/**
 * Job completion time of multi-turn programs (agents): from the arrival of a program's
 * first request to the end of its last, tool pauses included. The metric Continuum
 * reports (mean and P95 job completion time).
 *
 * @module
 */

import { type Distribution, distribution } from "./stats.ts";

/** What one program did. */
export interface ProgramRecord {
  /** Program id. */
  id: string;
  /** Arrival of its first request, seconds. */
  arrival: number;
  /** End of its latest finished request, seconds. */
  finish: number;
  /** Requests that completed. */
  turns: number;
  /** Whether every one of its requests completed. */
  complete: boolean;
}

/** Program-level metrics of a run. */
export interface ProgramSummary {
  /** Programs seen. */
  programs: number;
  /** Programs whose every request completed. */
  completed: number;
  /** Mean completed requests per completed program. */
  mean_turns: number;
  /** Completed programs per second of the run. */
  program_throughput: number;
  /** Job completion time of completed programs, seconds. */
  jct_s: Distribution;
}

/** Summarize programs; `duration` is the run's length in seconds. */
export function summarizePrograms(
  programs: readonly ProgramRecord[],
  duration: number,
  percentiles: readonly number[] = [50, 90, 99],
): ProgramSummary {
  const done = programs.filter((p) => p.complete);
  const turns = done.reduce((s, p) => s + p.turns, 0);
  return {
    programs: programs.length,
    completed: done.length,
    mean_turns: done.length > 0 ? turns / done.length : 0,
    program_throughput: done.length / (duration > 0 ? duration : 1),
    jct_s: distribution(done.map((p) => p.finish - p.arrival), percentiles),
  };
}
