import { loadConfig } from '../config/load-config.js';
import { listModelNames, loadModelDescriptor } from '../models/load-descriptor.js';
import { checkTracking } from '../pipeline/check-model-input.js';
import { trackSettingsOf } from '../tracking/track-schema.js';
import { reportError } from './report-error.js';

/** `visionpipe validate <file>`: config and model descriptor checks, no run. */
export function validateCommand(file: string): number {
  try {
    const config = loadConfig({ file });
    const d = loadModelDescriptor(config.model);
    checkTracking(config, d);
    process.stdout.write(`${file}: valid (model ${d.name}: ${d.format} on ${config.engine === 'auto' ? d.engine : config.engine})\n`);
    for (const s of config.source) {
      if (trackSettingsOf(s) === null) continue;
      process.stdout.write(`  ${s.uri}: tracked, ${s.zones.length} zone(s), ${s.lines.length} line(s)\n`);
    }
    return 0;
  } catch (err) {
    return reportError(err, false);
  }
}

/** `visionpipe models`: the bundled descriptors and whether their model files are present. */
export function modelsCommand(): number {
  for (const name of listModelNames()) {
    try {
      const d = loadModelDescriptor(name);
      process.stdout.write(`${name.padEnd(22)} ${d.task.padEnd(15)} ${d.engine.padEnd(5)} ${d.description}\n`);
    } catch (err) {
      process.stdout.write(`${name.padEnd(22)} unavailable: ${(err as Error).message.split('.')[0]}\n`);
    }
  }
  return 0;
}
