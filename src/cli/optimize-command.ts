import { createLogger } from '../log.js';
import { optimizeModel, type VariantReport } from '../models/optimize/optimize-model.js';
import { reportError } from './report-error.js';

/** `visionpipe optimize <model> --clip <video>`. */
export async function optimizeCommand(
  model: string,
  flags: { clip: string; evalClip?: string; out: string; compare?: string[]; budget?: number; calibrationFrames?: number; evalFrames?: number; minScore?: number; verbose?: boolean },
): Promise<number> {
  try {
    const report = await optimizeModel({
      model,
      clip: flags.clip,
      evalClip: flags.evalClip,
      outDir: flags.out,
      ...(flags.compare === undefined ? {} : { compare: flags.compare }),
      ...(flags.budget === undefined ? {} : { budget: flags.budget }),
      ...(flags.calibrationFrames === undefined ? {} : { calibrationFrames: flags.calibrationFrames }),
      ...(flags.evalFrames === undefined ? {} : { evalFrames: flags.evalFrames }),
      ...(flags.minScore === undefined ? {} : { minScore: flags.minScore }),
      logger: createLogger(flags.verbose === true ? 'debug' : 'info'),
    });
    const width = Math.max(16, ...report.variants.map((v) => v.name.length));
    for (const v of report.variants) {
      process.stdout.write(
        `${v.name === report.picked ? '*' : ' '} ${v.name.padEnd(width)} ${report.metric} ${(100 * v.agreement).toFixed(1).padStart(5)} %${detail(v)}  mean ${v.meanMs.toFixed(2).padStart(8)} ms  p99 ${v.p99Ms.toFixed(2).padStart(8)} ms  ${(v.sizeBytes / 1024).toFixed(0).padStart(7)} KiB  ${v.file}${v.method === undefined ? '' : `  (${v.method})`}\n`,
      );
    }
    for (const p of report.precisionSweep ?? []) {
      const which = p.only === undefined ? '' : ` (${p.only} only)`;
      process.stdout.write(`  simulated ${String(p.bits).padStart(2)} bits${which}: ${report.metric} ${(100 * p.agreement).toFixed(1)} %\n`);
    }
    process.stdout.write(`picked ${report.picked}: ${report.speedupVsFp32.toFixed(2)}x fp32 within ${report.metric} ≥ ${(100 * report.budget).toFixed(1)} %; report in ${flags.out}/report.md\n`);
    return 0;
  } catch (err) {
    return reportError(err, flags.verbose === true);
  }
}

function detail(v: VariantReport): string {
  if (v.boxes !== undefined) return ` (fp32 boxes kept ${(100 * v.boxes.sameWithinTolerance).toFixed(1).padStart(5)} %)`;
  return v.top1AgreementConfident === undefined ? '' : ` (confident frames ${(100 * v.top1AgreementConfident).toFixed(1).padStart(5)} %)`;
}
