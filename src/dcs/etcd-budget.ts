import { AsyncLocalStorage } from 'node:async_hooks';

/** What is left of a budget of etcd time, shared by the requests made under it. */
export interface EtcdBudget {
  readonly totalMs: number;
  leftMs: number;
}

const current = new AsyncLocalStorage<EtcdBudget>();

/**
 * Runs `fn` with its etcd requests sharing `totalMs` of etcd time: each request gets the least of
 * its own timeout and what is left, and uses up what it took. An agent's loop runs under one, so
 * that its requests (read, member record, the executors' writes) together take at most the budget
 * when etcd hangs, not a timeout each. Time spent elsewhere (SQL, a promotion) is not counted.
 * What runs outside `fn` (the lease keeper's renewals, the watch) is not bounded by it.
 */
export function withEtcdBudget<T>(totalMs: number, fn: () => Promise<T>): Promise<T> {
  return current.run({ totalMs, leftMs: totalMs }, fn);
}

/** The budget the calling code runs under, if any. */
export const etcdBudget = (): EtcdBudget | undefined => current.getStore();
