/** One class guess for a whole frame. */
export interface Classification {
  classId: number;
  label: string;
  score: number;
}

/** One detected object, its box in frame pixels. */
export interface Detection {
  classId: number;
  label: string;
  score: number;
  /** [x1, y1, x2, y2] in frame pixels. */
  xyxy: [number, number, number, number];
}

/** What a model said about one frame. */
export type FrameResult =
  | { task: 'classification'; classifications: Classification[] }
  | { task: 'detection'; detections: Detection[] };
