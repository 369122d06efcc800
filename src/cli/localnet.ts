/**
 * `boltzmann localnet`: a local subtensor chain (the real runtime, embedded genesis) on
 * 127.0.0.1 with a subnet ready for boltzmann; prints the endpoint and netuid (one JSON
 * line with `--json`, for scripts such as a devnet in another process) and runs until
 * SIGINT or SIGTERM.
 */
import { type Command, parseCommand } from "./command.ts";
import { LOCALNET } from "./flags.ts";
import { stopOnSignals } from "./stop_signals.ts";
import { startLocalnet } from "../chain/localnet.ts";
import { hotkeyFromUri } from "../chain/wallet.ts";

export const command: Command = {
  about: `boltzmann localnet [--port 9944] [--block-ms 12000] [--tempo 10] [--hotkeys SS58,...]
                   [--commit-reveal]

Runs the Bittensor runtime (spec 218) in this process with chopsticks: //Alice is sudo,
dev accounts are funded, one subnet is created with weights rate limit 0, commit-reveal
off (on with --commit-reveal: reveal period 1 epoch) and open registration, and the given hotkeys are registered (uid i = i-th hotkey).
State is kept in memory only: stopping the chain forgets it. --json prints
{endpoint, netuid, hotkeys, coldkeys} as one JSON line.`,
  surfaces: [LOCALNET],
  async run(argv) {
    const { o } = parseCommand(argv, [LOCALNET]);
    const port = o.num("port");
    const blockTimeMs = o.num("block-ms");
    const tempo = o.num("tempo");
    const hotkeys: string[] = [];
    for (const h of (o.strOpt("hotkeys") ?? "").split(",").filter((s) => s !== "")) {
      hotkeys.push(h.startsWith("//") ? (await hotkeyFromUri(h)).ss58 : h);
    }
    const commitReveal = o.bool("commit-reveal");
    const net = await startLocalnet({ port, blockTimeMs, tempo, hotkeys, commitReveal });
    const info = {
      endpoint: net.endpoint,
      netuid: net.netuid,
      hotkeys: net.hotkeys,
      coldkeys: net.coldkeys,
    };
    if (o.bool("json")) console.log(JSON.stringify(info));
    else {
      console.log(`Local chain on ${net.endpoint}, subnet ${net.netuid}`);
      net.hotkeys.forEach((h, i) =>
        console.log(`  uid ${i}: hotkey ${h} coldkey ${net.coldkeys[i]}`)
      );
      console.log("Ctrl-C stops it.");
    }
    const stop = stopOnSignals();
    await new Promise((r) => stop.signal.addEventListener("abort", r, { once: true }));
    stop.dispose();
    await net.stop();
    return 0;
  },
};
