"""Reports, plots and machine-to-machine comparisons, read only from results files.

Works without cupy or MPI. The entry points live in their modules (this package imports nothing,
so that ``benchbench.reporting.compare`` stays the module):

- ``tables.report()``: tables per workload × device (terminal, Markdown, CSV, HTML), epoch logs;
- ``plots.plot()``: PNG and SVG figures (throughput, scaling, time to accuracy, phases);
- ``compare.compare()``: machines side by side, ratios with CIs, per watt, per price;
- ``html.html_report()``: one self-contained HTML page per run or comparison;
- ``scaling.fit()`` / ``scaling.predict()``: the ring all-reduce model of data-parallel steps.

Every problem with the input raises ``runs.ReportError``: one line naming the file and the problem.
"""
