"""Where Spark's own log lines go when the CLI, a notebook or a test starts Spark locally.

Spark's log4j prints WARN/ERROR lines, often with 50-line Java stack traces, on stderr before the
CLI's one-line error. In local mode they are sent to a file instead (``<log dir>/spark.log``,
rotated at 10 MB; ``FSTORE_LOG_DIR``, default ``.data/logs`` in the project), through a log4j2
properties file given to the driver JVM. Under spark-submit (a cluster) this module is not used:
the cluster's logging stays as its operators set it up.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

LOG4J2 = """\
# Written by fstore_batch.spark_logging: Spark's log lines go to a file, not to the CLI's stderr.
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log_dir}/spark.log
appender.file.filePattern = {log_dir}/spark.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
# Noisy and harmless in local mode
logger.nativecode.name = org.apache.hadoop.util.NativeCodeLoader
logger.nativecode.level = error
"""


def log_dir() -> Path:
    return Path(os.environ.get("FSTORE_LOG_DIR") or PROJECT_ROOT / ".data" / "logs").resolve()


def local_log_settings() -> dict[str, str]:
    """Spark settings that send a local driver's log4j output to ``<log dir>/spark.log``.

    Returns no settings when the log folder cannot be written (Spark then logs as it would).
    """
    folder = log_dir()
    conf = folder / "log4j2-spark.properties"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        text = LOG4J2.format(log_dir=folder.as_posix())
        if not conf.exists() or conf.read_text() != text:
            conf.write_text(text)
    except OSError:
        return {}
    return {"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={conf.as_uri()}",
            "spark.ui.showConsoleProgress": "false"}
