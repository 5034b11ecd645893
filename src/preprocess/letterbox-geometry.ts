/**
 * Where a frame lands inside the model input, for each resize mode. Pure arithmetic, so it is unit-tested
 * without OpenCV, and the same numbers map boxes back from model-input pixels to frame pixels.
 *
 * model-input x = frame x * scaleX + offsetX   (likewise y)
 */
export interface InputTransform {
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
}

export interface ResizePlan extends InputTransform {
  /** Size the frame is resized to before padding / cropping. */
  resizedWh: [number, number];
  /** letterbox: padding in pixels (top, bottom, left, right). */
  padTblr: [number, number, number, number];
  /** center-crop: the crop rectangle inside the resized frame. */
  cropXywh: [number, number, number, number] | null;
}

export function planResize(
  mode: 'stretch' | 'letterbox' | 'center-crop',
  frameWh: readonly [number, number],
  inputWh: readonly [number, number],
): ResizePlan {
  const [fw, fh] = frameWh;
  const [iw, ih] = inputWh;
  if (mode === 'stretch') {
    return { scaleX: iw / fw, scaleY: ih / fh, offsetX: 0, offsetY: 0, resizedWh: [iw, ih], padTblr: [0, 0, 0, 0], cropXywh: null };
  }
  const s = mode === 'letterbox' ? Math.min(iw / fw, ih / fh) : Math.max(iw / fw, ih / fh);
  const rw = Math.max(1, Math.round(fw * s));
  const rh = Math.max(1, Math.round(fh * s));
  const sx = rw / fw;
  const sy = rh / fh;
  if (mode === 'letterbox') {
    const left = Math.floor((iw - rw) / 2);
    const top = Math.floor((ih - rh) / 2);
    return {
      scaleX: sx,
      scaleY: sy,
      offsetX: left,
      offsetY: top,
      resizedWh: [rw, rh],
      padTblr: [top, ih - rh - top, left, iw - rw - left],
      cropXywh: null,
    };
  }
  const x0 = Math.floor((rw - iw) / 2);
  const y0 = Math.floor((rh - ih) / 2);
  return {
    scaleX: sx,
    scaleY: sy,
    offsetX: -x0,
    offsetY: -y0,
    resizedWh: [rw, rh],
    padTblr: [0, 0, 0, 0],
    cropXywh: [x0, y0, iw, ih],
  };
}

/** Maps a box from model-input pixels back to frame pixels, clipped to the frame. */
export function boxToFrame(
  xyxy: readonly [number, number, number, number],
  t: InputTransform,
  frameWh: readonly [number, number],
): [number, number, number, number] {
  const clip = (v: number, max: number) => Math.min(Math.max(v, 0), max);
  return [
    clip((xyxy[0] - t.offsetX) / t.scaleX, frameWh[0]),
    clip((xyxy[1] - t.offsetY) / t.scaleY, frameWh[1]),
    clip((xyxy[2] - t.offsetX) / t.scaleX, frameWh[0]),
    clip((xyxy[3] - t.offsetY) / t.scaleY, frameWh[1]),
  ];
}
