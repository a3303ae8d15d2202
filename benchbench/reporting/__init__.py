"""Reports, plots and machine-to-machine comparisons, read only from results files.

Works without cupy or MPI. The entry points live in their modules (this package imports nothing,
so that ``benchbench.reporting.compare`` stays the module):

- ``verbs.report()``: the buyer's summary (``buyer``), tables per workload × device and every
  caveat section (``sections``: the same sections in terminal, Markdown and HTML), epoch logs;
- ``verbs.compare()``: machines side by side, ratios with CIs, per watt, per price, what differs
  between them, and the ``--fail-if-slower`` gate (``compare_gate``);
- ``plots.plot()``: PNG and SVG figures (throughput, scaling, time to accuracy, phases, batch,
  summary), each carrying its marks (``figure_marks``: watermark, hatching, footer);
- ``html.html_report()``: one self-contained HTML page per run or comparison;
- ``scaling.fit()`` / ``scaling.predict()``: the ring all-reduce model of data-parallel steps.

One renderer per medium, in ``render``: rich for the terminal, pandas for Markdown, CSV and HTML.
The modules import one another in one direction only: ``verbs`` → ``html`` → ``compare`` →
``sections`` → ``scaling_report`` → ``plots`` → ``summary_plot``, ``buyer``, ``tables``,
``figure_marks``, ``batch`` → ``marks``, ``render``, ``summary``, ``runs``.

Every problem with the input raises ``runs.ReportError``: one line naming the file and the problem.
"""
