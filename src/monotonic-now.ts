/**
 * CLOCK_MONOTONIC in whole ms (libuv's hrtime): the same in every process of the machine, and
 * moved by no step of the wall clock (NTP, an operator). Every deadline and duration is read on it;
 * whole ms because timers refuse fractions.
 */
export const monotonicNow = (): number => Number(process.hrtime.bigint() / 1_000_000n);
