/**
 * How a long-running command stops on SIGINT or SIGTERM: the first one aborts a signal
 * the command's roles watch (they stop their children, close the chain, write what they
 * must); a second one exits at once with 128 + the signal's number, for a shutdown that
 * hangs. Left out: what stopping means, which each command decides.
 *
 * @module
 */

const NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

/** A stop signal, and the function that removes its listeners once the command is done. */
export interface StopSignals {
  /** Aborted by the first SIGINT or SIGTERM; its `reason` is the signal's name. */
  signal: AbortSignal;
  dispose(): void;
}

/** Listens for SIGINT and SIGTERM until `dispose()` (see the module doc). */
export function stopOnSignals(): StopSignals {
  const ac = new AbortController();
  const handlers = (Object.keys(NUMBERS) as (keyof typeof NUMBERS)[]).map((name) => {
    const h = () => {
      if (ac.signal.aborted) Deno.exit(128 + NUMBERS[name]);
      ac.abort(name);
    };
    Deno.addSignalListener(name, h);
    return [name, h] as const;
  });
  return {
    signal: ac.signal,
    dispose: () => {
      for (const [name, h] of handlers) Deno.removeSignalListener(name, h);
    },
  };
}
