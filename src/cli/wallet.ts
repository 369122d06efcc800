/**
 * `boltzmann wallet create|show`: btcli-compatible wallets for local use. `create` writes
 * an unencrypted coldkey (if the wallet has none), `coldkeypub.txt` and a hotkey, and
 * never overwrites; `show` prints addresses only. Secrets are never printed.
 */
import { type Command, parseCommand } from "./command.ts";
import { UsageError } from "./args.ts";
import { WALLET, WALLET_CMD } from "./flags.ts";
import { createWallet, defaultWalletPath, loadHotkey, readColdkeyPub } from "../chain/wallet.ts";

const SURFACES = [WALLET_CMD, WALLET];

export const command: Command = {
  about: `boltzmann wallet create --name N --hotkey H [--wallet.path P] [--json]
boltzmann wallet show   --name N [--hotkey H] [--wallet.path P] [--json]

btcli's layout: <path>/<name>/coldkey, coldkeypub.txt, hotkeys/<hotkey> (JSON keyfiles).
create makes an UNENCRYPTED coldkey (for local networks; use btcli for real funds) unless
the wallet already has one, and a new hotkey; it refuses to overwrite any file.
The wallets folder is --wallet.path, else $BT_WALLET_PATH, else ~/.bittensor/wallets.`,
  surfaces: SURFACES,
  async run(argv) {
    const { o, positionals } = parseCommand(argv, SURFACES, true);
    const [sub, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`Unexpected argument '${extra[0]}'`);
    const name = o.strOpt("name") ?? o.strOpt("wallet.name");
    const hotkey = o.strOpt("hotkey") ?? o.strOpt("wallet.hotkey");
    const path = o.strOpt("wallet.path") ?? defaultWalletPath(Deno.env.get("HOME") ?? ".");
    const json = o.bool("json");
    if (sub !== "create" && sub !== "show") {
      throw new UsageError(`Unknown wallet command '${sub ?? ""}': use create or show`);
    }
    if (!name) throw new UsageError(`Missing --name: the wallet (coldkey) name`);
    if (sub === "create") {
      if (!hotkey) throw new UsageError(`Missing --hotkey: the hotkey name`);
      const w = await createWallet({ walletPath: path, name, hotkey });
      if (json) {
        console.log(JSON.stringify({ name, hotkeyName: hotkey, ...w }));
      } else {
        console.log(
          `${w.coldkeyCreated ? "Created" : "Kept"} coldkey ${w.coldkey} (${path}/${name})`,
        );
        console.log(`Created hotkey ${w.hotkey} (${path}/${name}/hotkeys/${hotkey})`);
      }
      return 0;
    }
    const coldkey = await readColdkeyPub({ walletPath: path, name });
    let hotkeys: string[] = [];
    if (hotkey) hotkeys = [hotkey];
    else {
      try {
        for await (const e of Deno.readDir(`${path}/${name}/hotkeys`)) {
          if (e.isFile) hotkeys.push(e.name);
        }
      } catch { /* no hotkeys folder */ }
      hotkeys.sort();
    }
    const shown: { name: string; ss58: string }[] = [];
    for (const h of hotkeys) {
      shown.push({ name: h, ss58: (await loadHotkey({ walletPath: path, name, hotkey: h })).ss58 });
    }
    if (json) console.log(JSON.stringify({ name, path, coldkey, hotkeys: shown }));
    else {
      console.log(`Wallet ${name} (${path}/${name})`);
      console.log(`  coldkey ${coldkey}`);
      for (const h of shown) console.log(`  hotkey ${h.name}: ${h.ss58}`);
    }
    return 0;
  },
};
