import { createLogger } from '../log.js';
import { optimizeModel } from '../models/optimize/optimize-model.js';
import { reportError } from './report-error.js';

/** `visionpipe optimize <model.h5> --clip <video>`. */
export async function optimizeCommand(
  model: string,
  flags: { clip: string; out: string; budget?: number; calibrationFrames?: number; evalFrames?: number; verbose?: boolean },
): Promise<number> {
  try {
    const report = await optimizeModel({
      modelPath: model,
      clip: flags.clip,
      outDir: flags.out,
      ...(flags.budget === undefined ? {} : { budget: flags.budget }),
      ...(flags.calibrationFrames === undefined ? {} : { calibrationFrames: flags.calibrationFrames }),
      ...(flags.evalFrames === undefined ? {} : { evalFrames: flags.evalFrames }),
      logger: createLogger(flags.verbose === true ? 'debug' : 'info'),
    });
    for (const v of report.variants) {
      process.stdout.write(
        `${v.name === report.picked ? '*' : ' '} ${v.name.padEnd(16)} agreement ${(100 * v.top1Agreement).toFixed(1).padStart(5)} % (confident frames ${(100 * v.top1AgreementConfident).toFixed(1).padStart(5)} %)  ${v.meanMs.toFixed(2).padStart(8)} ms  ${(v.sizeBytes / 1024).toFixed(0).padStart(7)} KiB  ${v.file}\n`,
      );
    }
    process.stdout.write(`picked ${report.picked}: ${report.speedupVsFp32.toFixed(2)}x fp32 within ${(100 * report.budget).toFixed(1)} % agreement; report in ${flags.out}/report.md\n`);
    return 0;
  } catch (err) {
    return reportError(err, flags.verbose === true);
  }
}
