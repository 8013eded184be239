import { z } from 'zod';

/**
 * The bodies the agent's mutating endpoints accept. A module of its own, loaded at the first such
 * request: an agent that is never asked to act does not load the schema library (~2 MiB of heap).
 */
export const API_BODIES = {
  none: z.strictObject({}),
  stop: z.strictObject({ mode: z.enum(['fast', 'immediate']).default('fast') }),
  switchover: z.strictObject({ to: z.string().min(1).optional() }),
  failover: z.strictObject({ to: z.string().min(1).optional(), force: z.boolean().default(false) }),
  failsafe: z.strictObject({ leader: z.string().min(1) }),
};

export type ApiBodies = typeof API_BODIES;
