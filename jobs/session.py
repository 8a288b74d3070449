"""The SparkSession for a recipe, with the settings every stage relies on."""

from __future__ import annotations

import errno
import os
import re
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession

import corpus
from corpus.config import Config

#: Applied unless the config sets them (config `spark.conf` or `spark.<property>=` on the command line).
DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    # Parquet timestamps as INT64 microseconds (the schema's timestamp[us, UTC]), not legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Python workers (and the models they loaded) are reused across tasks.
    "spark.python.worker.reuse": "true",
    "spark.driver.memory": "2g",
    # No _SUCCESS markers or .crc side files in outputs: manifest.json is the completion record.
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    "spark.sql.sources.partitionOverwriteMode": "static",
}


#: Task attempts in local mode (a cluster's default): local mode otherwise gives up at the first failure, so one
#: Python worker killed by the OOM killer would abort the run. `spark.task.maxFailures` overrides it.
LOCAL_MAX_FAILURES = 4
_LOCAL_MASTER = re.compile(r"local(\[(\*|\d+)\])?")
#: Where this run's Spark log goes (warnings and errors with their stack traces; the console gets one line each).
spark_log: str | None = None


def local_master(master: str, conf: dict[str, str]) -> str:
    """`local[N]` -> `local[N,F]`, F task attempts (`spark.task.maxFailures`, which local mode ignores, or 4)."""
    m = _LOCAL_MASTER.fullmatch(master.strip())
    if m is None:
        return master  # a cluster, local-cluster[...], or local[N,F] already
    return f"local[{m.group(2) or 1},{conf.get('spark.task.maxFailures', LOCAL_MAX_FAILURES)}]"


def under_spark_submit() -> bool:
    """True when spark-submit launched this driver (it then owns the master URL and the submit options)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_session(config: Config) -> SparkSession:
    """Get or create the session. Python workers run the interpreter that runs the driver unless
    PYSPARK_PYTHON says otherwise, so a virtualenv's packages are visible to them in local mode.

    Under spark-submit, its own options (--master, --conf, ...) win over the config's `spark` section."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = {**DEFAULTS, **config.spark.conf}
    settings.setdefault("spark.sql.parquet.compression.codec", config.output_options.compression)
    # Our own progress line (jobs/progress.py) replaces Spark's console bar, which would interleave with it.
    settings.setdefault("spark.ui.showConsoleProgress", "false")
    log4j = Path(corpus.__file__).resolve().parent / "data" / "log4j2.properties"
    if log4j.exists() and "spark.driver.extraJavaOptions" not in settings:
        global spark_log
        from corpus.assets import cache_dir

        logs = cache_dir() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        spark_log = str(logs / f"spark-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
        options = f"-Dlog4j2.configurationFile=file:{log4j} -Dcorpus.spark.log={spark_log}"
        settings["spark.driver.extraJavaOptions"] = options
    builder = SparkSession.builder
    if under_spark_submit():
        from pyspark import SparkConf

        submitted = SparkConf()
        settings = {k: v for k, v in settings.items() if not submitted.contains(k)}
    else:
        if config.spark.master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode stays on loopback
        builder = builder.master(local_master(config.spark.master, settings)).appName(config.spark.app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("CORPUS_SPARK_LOG_LEVEL", "WARN"))
    # Local filesystem writes: no .crc checksum side files.
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    spark.sparkContext._jvm.org.apache.hadoop.fs.FileSystem.get(  # type: ignore[union-attr]
        spark.sparkContext._jvm.java.net.URI.create("file:///"),
        hadoop,  # type: ignore[union-attr]
    ).setWriteChecksum(False)
    return spark


def ui_url(spark: SparkSession) -> str | None:
    return spark.sparkContext.uiWebUrl


def hadoop_has_filesystem(spark: SparkSession, url: str) -> bool:
    """Whether Spark's Hadoop layer can read and write `url` (local paths always; s3a://, hdfs://, gs://, ...
    only with their connector on the classpath: the pip pyspark has none for object stores)."""
    from corpus.assets import is_url

    if not is_url(url):
        return True
    jvm = spark.sparkContext._jvm  # type: ignore[union-attr]
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    try:
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(url.split("://", 1)[0], hadoop)
    except Exception:  # py4j wraps Hadoop's UnsupportedFileSystemException
        return False
    return True


_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG}
_WRITE_CAUSES = ("No space left on device", "Read-only file system", "Permission denied", "Disk quota exceeded")
_WRITTEN_PATH = re.compile(r"(?:file:|\bto |\bwriting )(/[^\s,;]*[^\s,;.])")
#: A Python OSError as Spark relays it from a worker (a shard written with pyarrow): "[Errno 28] ...: '<path>'"
_PYTHON_PATH = re.compile(r"\[Errno \d+\] [^:\n]+: '([^'\n]+)'")


def storage_failure(exc: BaseException) -> str | None:
    """One line for a failure to write the output (a full disk, read-only storage, no permission), raised by Python
    or from inside Spark; None for any other failure."""
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write{where}: {exc.strerror}"
    text = str(exc)
    cause = next((c for c in _WRITE_CAUSES if c in text), None)
    if cause is None:
        return None
    m = _PYTHON_PATH.search(text) or _WRITTEN_PATH.search(text)
    where = f" {m.group(1)}" if m else " the output"
    log = f" (Spark's log: {spark_log})" if spark_log else ""
    return f"cannot write{where}: {cause}{log}"


def ship_user_modules(spark: SparkSession, config: Config) -> list[str]:
    """Send the modules of the user's own filters (``filters.<name>.class=package.module:Class``) to the
    executors with the job (`addPyFile`), unless they are installed (in a site-packages folder, which the
    executors' environment is expected to have). Returns what was shipped."""
    import importlib
    import tempfile
    import zipfile

    shipped = []
    for params in config.filters.values():
        if "class" not in params:
            continue
        top = str(params["class"]).partition(":")[0].split(".")[0]
        module = importlib.import_module(top)
        origin = getattr(module, "__file__", None)
        if origin is None or "site-packages" in origin or "dist-packages" in origin:
            continue
        path = Path(origin)
        if path.name == "__init__.py":  # a package: zip it, so its submodules travel too
            archive = Path(tempfile.mkdtemp(prefix="corpus-ship-")) / f"{top}.zip"
            with zipfile.ZipFile(archive, "w") as zf:
                for file in sorted(path.parent.rglob("*.py")):
                    zf.write(file, str(file.relative_to(path.parent.parent)))
            spark.sparkContext.addPyFile(str(archive))
            shipped.append(str(archive))
        elif str(path) not in shipped:
            spark.sparkContext.addPyFile(str(path))
            shipped.append(str(path))
    return shipped
