import { cv } from '../../cv.js';
import type { VariantReport } from './optimize-model.js';

/** Speed (x: mean ms) against accuracy (y: agreement with fp32) per variant, with the budget line, as a PNG. */
export async function drawSpeedAgreementChart(variants: VariantReport[], budget: number, yLabel: string, file: string): Promise<void> {
  const [W, H, L, B, T, R] = [720, 440, 80, 60, 30, 40];
  const img = new cv.Mat(H, W, cv.CV_8UC3, [255, 255, 255]);
  const maxMs = Math.max(...variants.map((v) => v.meanMs)) * 1.15;
  const minAgree = Math.min(budget, ...variants.map((v) => v.agreement)) - 0.02;
  const x = (ms: number) => Math.round(L + (ms / maxMs) * (W - L - R));
  const y = (a: number) => Math.round(H - B - ((a - minAgree) / (1 - minAgree)) * (H - B - T));
  const black = new cv.Vec3(0, 0, 0);
  const font = cv.FONT_HERSHEY_SIMPLEX;
  img.drawLine(new cv.Point2(L, H - B), new cv.Point2(W - R, H - B), black, 1);
  img.drawLine(new cv.Point2(L, H - B), new cv.Point2(L, T), black, 1);
  img.drawLine(new cv.Point2(L, y(budget)), new cv.Point2(W - R, y(budget)), new cv.Vec3(60, 60, 220), 1);
  img.putText(`budget ${(100 * budget).toFixed(1)} %`, new cv.Point2(L + 8, y(budget) + 16), font, 0.45, new cv.Vec3(60, 60, 220), 1);
  img.putText('mean latency (ms), lower is faster', new cv.Point2(L + 150, H - 18), font, 0.5, black, 1);
  img.putText(yLabel, new cv.Point2(8, 20), font, 0.5, black, 1);
  for (let i = 0; i <= 4; i++) {
    const ms = (maxMs * i) / 4;
    img.putText(ms.toFixed(1), new cv.Point2(x(ms) - 10, H - B + 18), font, 0.4, black, 1);
    const a = minAgree + ((1 - minAgree) * i) / 4;
    img.putText(`${(100 * a).toFixed(1)}`, new cv.Point2(30, y(a) + 4), font, 0.4, black, 1);
  }
  for (const v of variants) {
    const p = new cv.Point2(x(v.meanMs), y(v.agreement));
    img.drawCircle(p, 6, new cv.Vec3(200, 120, 0), -1);
    img.putText(v.name, new cv.Point2(p.x + 8, p.y - 8), font, 0.45, black, 1);
  }
  await cv.imwriteAsync(file, img);
}
