/**
 * The request record every workload generator, trace reader and the simulation driver
 * share (defined with the driver, core/simulation.ts).
 *
 * @module
 */

import type { SimRequest } from "../../core/simulation.ts";

/** One request of a workload: its lengths, its arrival and, hidden, its true output length. */
export type WorkloadRequest = SimRequest;
