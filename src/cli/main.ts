#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { benchCommand } from './bench-command.js';
import { registerClusterCommands } from './cluster-commands.js';
import { convertModel } from '../models/convert-model.js';
import type { IntegerWeightType } from '../models/tflite/tflite-to-onnx.js';
import { prepareOutputPath } from '../sinks/output-path.js';
import { optimizeCommand } from './optimize-command.js';
import { runCommand } from './run-command.js';
import { modelsCommand, validateCommand } from './info-commands.js';
import { reportError } from './report-error.js';

const program = new Command()
  .name('visionpipe')
  .description('Real-time video inference: OpenCV capture → TensorFlow/ONNX model → annotated MP4 + JSON-lines events')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

function weightTypeArg(value: string): IntegerWeightType {
  if (value !== 'int8' && value !== 'uint8') throw new InvalidArgumentError(`expected int8 or uint8, got "${value}"`);
  return value;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a whole number > 0, got "${value}"`);
  return n;
}

program
  .command('run')
  .description('run a model over video files, RTSP / HTTP streams or cameras')
  .argument('[sources...]', 'video file, rtsp:// URL, /dev/videoN or camera index; several share one inference worker (default: the config file\'s sources)')
  .option('-m, --model <name|path>', 'model descriptor name in models/ or path to a descriptor .yaml (default: centernet)')
  .option('--engine <engine>', 'auto | onnx | tfjs | opencv (overrides the descriptor)')
  .option('-o, --output <file.mp4>', 'write the annotated video here')
  .option('-e, --events <file.jsonl>', 'write events here as JSON lines: one prediction per frame, object events, state changes')
  .option('--snapshots <dir>', 'tracked sources: save a JPEG of each object (its best frame) here, named in its events')
  .option('--clips <dir>', 'tracked sources: save an MP4 clip around each zone / line event (output.clip sets which and how long), named in its events')
  .option('--no-frame-events', 'leave the per-frame prediction lines out of the events file (object and state events only)')
  .option('-c, --config <file.yaml>', 'config file (flags override it)')
  .option('--mqtt <url>', 'publish events to this MQTT broker (mqtt://host:1883), through a durable outbox (delivery.outbox.dir)')
  .option('--max-frames <n>', 'stop after n frames', positiveInt)
  .option('--ring-size <n>', 'input buffers shared with the inference worker (2 = double buffering)', positiveInt)
  .option('--metrics-port <port>', 'serve Prometheus metrics at http://127.0.0.1:<port>/metrics while running (0 = any free port)', port)
  .option('--ui [port]', 'serve the live page at http://127.0.0.1:<port>/ while running (default 8080; 0 = any free port)', port)
  .option('--log-level <level>', 'silent | error | warn | info | debug')
  .option('--json-logs', 'log JSON lines to stderr even on a terminal')
  .option('-q, --quiet', 'no progress bar')
  .option('-v, --verbose', 'debug logs and stack traces on errors')
  .action(async (sources: string[], opts) => {
    process.exitCode = await runCommand(sources, opts);
  });

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port number 0..65535, got "${value}"`);
  return n;
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError(`expected a fraction in (0, 1], got "${value}"`);
  return n;
}

program
  .command('convert')
  .description('convert a Keras .h5, a TF.js graph model.json or a TFLite .tflite file to ONNX')
  .argument('<model>', 'model.h5, model.json or model.tflite')
  .requiredOption('-o, --output <file.onnx>', 'where to write the ONNX model')
  .option('--output-node <name>', 'TF.js graphs: the output node to keep (default: the signature outputs)')
  .option('--int8-weights <type>', 'quantized .tflite: store weights as int8 or uint8 (default: what this CPU runs exactly; see README "TFLite models")', weightTypeArg)
  .option('-v, --verbose', 'stack traces on errors')
  .action(async (model: string, opts: { output: string; outputNode?: string; int8Weights?: IntegerWeightType; verbose?: boolean }) => {
    try {
      const bytes = await convertModel(model, prepareOutputPath(opts.output, 'ONNX output'), opts.outputNode, opts.int8Weights);
      process.stdout.write(`${opts.output}: ${(bytes / 2 ** 20).toFixed(2)} MiB\n`);
    } catch (err) {
      process.exitCode = reportError(err, opts.verbose === true);
    }
  });

program
  .command('optimize')
  .description('import a model, write fp32 / fp16 / int8 ONNX variants calibrated on your clip, measure them on this machine and pick one')
  .argument('<model>', 'Keras .h5 (Keras 2.x or 3), TF.js graph model.json, float .tflite or .onnx classifier, or a model descriptor (name or .yaml; detectors too)')
  .requiredOption('--clip <video>', 'your own footage: calibration and evaluation frames')
  .option('--eval-clip <video>', 'evaluate on this other clip (all of it) instead of the second half of --clip: does int8 calibrated on one scene hold on another?')
  .option('--compare <models...>', 'other exports of the same network to measure beside visionpipe’s variants (e.g. an int8 .tflite)')
  .option('--out <dir>', 'where variants and report go', 'out/optimize')
  .option('--budget <fraction>', 'minimum agreement with fp32: top-1 for classifiers, box F1 for detectors (default 0.99)', fraction)
  .option('--min-score <fraction>', 'detectors: boxes below this score are not compared (default 0.3)', fraction)
  .option('--calibration-frames <n>', 'frames used to calibrate (default 64)', positiveInt)
  .option('--eval-frames <n>', 'frames used to measure agreement and speed (default 300)', positiveInt)
  .option('-v, --verbose', 'debug logs and stack traces on errors')
  .action(async (model: string, opts) => {
    process.exitCode = await optimizeCommand(model, opts);
  });

program
  .command('bench')
  .description('measure the sequential loop against the overlapped pipeline, side by side (npm run bench)')
  .option('--clip <file>', 'video to run (default: ../shared/samples/vtest.avi, else samples/vtest.avi)')
  .option('--max-frames <n>', 'only the first n frames', positiveInt)
  .option('--only <case>', 'only one case: mlperf-tiny-resnet, centernet, int8, int8-detector, tracking, clips, page, delivery, live, batch, faults or cluster')
  .option('--live-seconds <n>', 'duration of the live overload case (default 70)', positiveInt)
  .option('--fault-seconds <n>', 'fault phase of the camera-faults case (default 180; camera 1 alone before it for min(60, n/2))', positiveInt)
  .action(async (opts) => {
    process.exitCode = await benchCommand(opts);
  });

registerClusterCommands(program);

program
  .command('validate')
  .description('check a config file (and its model descriptor) without running anything')
  .argument('<config.yaml>')
  .action((file: string) => {
    process.exitCode = validateCommand(file);
  });

program
  .command('models')
  .description('list the model descriptors in models/')
  .action(() => {
    process.exitCode = modelsCommand();
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = reportError(err, process.argv.includes('--verbose') || process.argv.includes('-v'));
}
