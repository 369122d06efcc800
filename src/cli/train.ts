/**
 * `boltzmann train`: train locally on the embedded corpus — a fresh model from a preset
 * or a checkpoint — with a progress line per step, held-out loss before and after, and
 * an optional checkpoint at the end.
 *
 * @module
 */
import { type Command, parseCommand } from "./command.ts";
import { UsageError } from "./args.ts";
import { hparamsFromFlags } from "./config.ts";
import { engineOptions } from "./engine.ts";
import { ENGINE, HPARAMS, TRAIN } from "./flags.ts";
import { validateHparams } from "../hparams.ts";
import { initParams } from "../model/init.ts";
import { paramCount, paramTable } from "../model/params.ts";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.ts";
import { embeddedDataset } from "../data/pages.ts";
import { createTrainer, newAdamState } from "../train/trainer.ts";

const SURFACES = [TRAIN, HPARAMS, ENGINE];

export const command: Command = {
  about: `boltzmann train [--preset tiny|seed | --checkpoint DIR] [--steps N] [--batch B] [--seq T]
                [--accum K] [--seed S] [--eval-batches N] [--out DIR] [--device cpu|cuda]
                [--threads N] [--json]

One optimizer step per K micro-batches of B rows × T tokens, taken in order from the
embedded corpus's training pages (AdamW, clip and learning rate from the preset).
Prints one line per step (loss, gradient norm, tokens/s, ETA) and the held-out loss
before and after. See docs/ENGINE.md. --json: JSON lines, one per step, then a summary.`,
  surfaces: SURFACES,
  async run(argv) {
    const { o } = parseCommand(argv, SURFACES);
    const json = o.bool("json");
    const hp = await hparamsFromFlags(o);
    const ckpt = o.strOpt("checkpoint");
    let params;
    if (ckpt) {
      const loaded = await loadCheckpoint(ckpt);
      hp.model = loaded.cfg;
      params = loaded.params;
    }
    hp.batchSize = o.numOpt("batch") ?? hp.batchSize;
    hp.seqLen = o.numOpt("seq") ?? hp.seqLen;
    try {
      validateHparams(hp);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const steps = o.num("steps");
    const accum = o.num("accum");
    const evalN = o.num("eval-batches");
    params ??= initParams(hp.model, o.num("seed"));
    const table = paramTable(hp.model);
    const say = (line: string) => json ? undefined : console.error(line);
    say(
      `Training ${paramCount(table).toLocaleString("en-US")} parameters (${hp.preset}${
        ckpt ? `, from ${ckpt}` : ""
      }): ` +
        `${steps} steps × ${accum} × [${hp.batchSize}, ${hp.seqLen}] tokens, lr ${hp.learningRate}`,
    );
    const data = await embeddedDataset(hp);
    const trainer = await createTrainer(hp, engineOptions(o));
    try {
      // Micro-batches in page order, wrapping around the corpus.
      let page = 0, queue: Int32Array[] = [];
      const next = async (): Promise<Int32Array> => {
        while (queue.length === 0) {
          queue = await data.pageBatches(page);
          page = (page + 1) % data.totalPages;
        }
        return queue.shift()!;
      };
      const heldOut = evalN > 0 ? await data.evalBatches(evalN) : [];
      const evalLoss = async () => heldOut.length ? await trainer.loss(params, heldOut) : NaN;
      const before = await evalLoss();
      if (heldOut.length) say(`held-out loss ${before.toFixed(4)} (${heldOut.length} batches)`);
      const opt = newAdamState(table);
      const t0 = performance.now();
      let tokens = 0, first = NaN, last = NaN;
      for (let s = 1; s <= steps; s++) {
        const batches: Int32Array[] = [];
        for (let k = 0; k < accum; k++) batches.push(await next());
        const r = await trainer.lossAndGrad(params, batches);
        const { gradNorm } = await trainer.step(params, opt, r.grads);
        tokens += r.tokens;
        if (s === 1) first = r.loss;
        last = r.loss;
        const secs = (performance.now() - t0) / 1000, rate = tokens / secs;
        const eta = (secs / s) * (steps - s);
        if (json) {
          console.log(
            JSON.stringify({
              step: s,
              loss: r.loss,
              grad_norm: gradNorm,
              tokens_per_s: Math.round(rate),
              eta_s: Math.round(eta),
            }),
          );
        } else {
          console.error(
            `step ${s}/${steps}  loss ${r.loss.toFixed(4)}  grad-norm ${gradNorm.toFixed(3)}  ` +
              `${Math.round(rate)} tok/s  ETA ${Math.round(eta)}s`,
          );
        }
      }
      const after = await evalLoss();
      const seconds = (performance.now() - t0) / 1000;
      if (heldOut.length) say(`held-out loss ${before.toFixed(4)} → ${after.toFixed(4)}`);
      const out = o.strOpt("out");
      if (out) {
        await saveCheckpoint(out, hp.model, params);
        say(`Wrote checkpoint ${out}`);
      }
      const summary = {
        preset: hp.preset,
        steps,
        tokens,
        seconds: +seconds.toFixed(1),
        tokens_per_s: Math.round(tokens / seconds),
        first_loss: first,
        last_loss: last,
        eval_before: heldOut.length ? before : null,
        eval_after: heldOut.length ? after : null,
        out: out ?? null,
      };
      if (json) console.log(JSON.stringify(summary));
      else {
        console.log(
          `Trained ${steps} steps in ${summary.seconds}s (${summary.tokens_per_s} tok/s): ` +
            `loss ${first.toFixed(4)} → ${last.toFixed(4)}` +
            (heldOut.length ? `, held-out ${before.toFixed(4)} → ${after.toFixed(4)}` : ""),
        );
      }
      return 0;
    } finally {
      await trainer.close();
    }
  },
};
