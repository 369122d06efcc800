/**
 * `boltzmann localnet`: a local subtensor chain (the real runtime, embedded genesis) on
 * 127.0.0.1 with a subnet ready for boltzmann; prints the endpoint and netuid (one JSON
 * line with `--json`, for scripts such as a devnet in another process) and runs until
 * SIGINT or SIGTERM.
 */
import type { Command } from "./command.ts";
import { int, parseFlags, str, UsageError } from "./args.ts";
import { hotkeyFromUri, startLocalnet } from "../chain/mod.ts";

export const command: Command = {
  name: "localnet",
  summary: "Start a local subtensor chain from the embedded genesis",
  usage: [
    "boltzmann localnet [--port 9944] [--block-ms 12000] [--tempo 10] [--hotkeys SS58,...]",
    "",
    "Runs the Bittensor runtime (spec 218) in this process with chopsticks: //Alice is sudo,",
    "dev accounts are funded, one subnet is created with weights rate limit 0, commit-reveal",
    "off and open registration, and the given hotkeys are registered (uid i = i-th hotkey).",
    "State is kept in memory only: stopping the chain forgets it.",
    "",
    "Flags:",
    "  --port P          port on 127.0.0.1 (default 9944; 0 = any free port)",
    "  --block-ms MS     block time (default 12000; 0 = a block per transaction only)",
    "  --tempo T         subnet tempo in blocks (default 10)",
    "  --hotkeys LIST    comma-separated SS58 hotkeys or dev URIs (//Alice) to register",
    "  --json            print {endpoint, netuid, hotkeys, coldkeys} as one JSON line",
  ].join("\n"),
  async run(argv) {
    const { flags } = parseFlags(argv, {
      port: { type: "string" },
      "block-ms": { type: "string" },
      tempo: { type: "string" },
      hotkeys: { type: "string" },
    });
    const port = int(flags, "port", 9944, 0, 65535);
    const blockTimeMs = int(flags, "block-ms", 12_000, 0, 3_600_000);
    if (blockTimeMs !== 0 && blockTimeMs < 200) {
      throw new UsageError(`Invalid --block-ms '${blockTimeMs}': expected 0 or at least 200`);
    }
    const tempo = int(flags, "tempo", 10, 1, 65535);
    const hotkeys: string[] = [];
    for (const h of (str(flags, "hotkeys") ?? "").split(",").filter((s) => s !== "")) {
      hotkeys.push(h.startsWith("//") ? (await hotkeyFromUri(h)).ss58 : h);
    }
    const net = await startLocalnet({ port, blockTimeMs, tempo, hotkeys });
    const info = {
      endpoint: net.endpoint,
      netuid: net.netuid,
      hotkeys: net.hotkeys,
      coldkeys: net.coldkeys,
    };
    if (flags.json) console.log(JSON.stringify(info));
    else {
      console.log(`Local chain on ${net.endpoint}, subnet ${net.netuid}`);
      net.hotkeys.forEach((h, i) =>
        console.log(`  uid ${i}: hotkey ${h} coldkey ${net.coldkeys[i]}`)
      );
      console.log("Ctrl-C stops it.");
    }
    const stop = Promise.withResolvers<string>();
    const onSig = (name: string) => () => stop.resolve(name);
    const sigs: [Deno.Signal, () => void][] = [["SIGINT", onSig("SIGINT")], [
      "SIGTERM",
      onSig("SIGTERM"),
    ]];
    for (const [s, h] of sigs) Deno.addSignalListener(s, h);
    await stop.promise;
    for (const [s, h] of sigs) Deno.removeSignalListener(s, h);
    await net.stop();
    return 0;
  },
};
