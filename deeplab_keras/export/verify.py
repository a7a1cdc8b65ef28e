"""``export_and_verify``: the end of the README main job - a verified int8 ``.tflite`` and a
float ``.onnx`` (each behind its parity gate) with a parity + latency table."""
import os

from deeplab_keras.export.api import EXTENSIONS, export_model
from deeplab_keras.export.benchmark import benchmark

DEFAULT_TARGETS = (("tflite", "int8"), ("onnx", "none"))


def export_and_verify(model, output_dir, *, name=None, input_size=513, labels=None,
                      calibration_data=None, parity_data=None, num_calibration=16, num_parity=4,
                      targets=DEFAULT_TARGETS, output_mode="classes", threads=2, runs=10,
                      report_dir=None, threshold=None, print_fn=print):
    """Export ``model`` to each ``(format, quantize)`` of ``targets`` in ``output_dir``, gate each
    against the Keras model, benchmark each on this CPU, print the table, return the reports
    (each with a ``"benchmark"`` entry). A failed gate raises :class:`ParityError`.

    ``calibration_data`` / ``parity_data``: folder, list of image files, array or tf.data
    (synthetic deterministic images when None - the table says which were used)."""
    os.makedirs(output_dir, exist_ok=True)
    name = name or model.name
    reports = []
    for fmt, quantize in targets:
        suffix = "" if quantize == "none" else f"_{quantize}"
        ext = EXTENSIONS[fmt]
        path = os.path.join(output_dir, f"{name}{suffix}{ext}")
        report = export_model(model, path, fmt, quantize, input_size, output_mode=output_mode,
                              calibration_data=calibration_data, parity_data=parity_data,
                              num_calibration=num_calibration, num_parity=num_parity,
                              labels=labels, threshold=threshold,
                              report_dir=report_dir or os.path.join(output_dir, "reports"))
        report["benchmark"] = benchmark(path, threads=threads, runs=runs, isolate=True)
        reports.append(report)
    if print_fn:
        print_fn(table(reports))
    return reports


def table(reports):
    lines = ["| artifact | format | quantize | agreement with Keras argmax | class-map mIoU taking Keras as truth (not labels) | median ms | p90 ms | size MB | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        b, m = r["benchmark"], r["parity"]
        mem = "n/a" if b["peak_rss_delta_mb"] is None else f"{b['peak_rss_delta_mb']:.0f}"
        lines.append(f"| {os.path.basename(r['output'])} | {r['format']} | {r['quantize']} | "
                     f"{m['agreement']:.4f} (gate >= {r['threshold']}) | {m['miou_vs_keras']:.2f} | "
                     f"{b['median_ms']:.1f} | {b['p90_ms']:.1f} | {b['size_mb']:.2f} | {mem} |")
    if reports:
        lines.append(f"\nparity images: {reports[0]['parity_images']}; latency: "
                     f"{reports[0]['benchmark']['threads']} threads, {reports[0]['benchmark']['runs']} runs")
    return "\n".join(lines)
