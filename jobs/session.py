"""The SparkSession for a recipe, with the settings every stage relies on."""

from __future__ import annotations

import os
import sys
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
    if log4j.exists():
        settings.setdefault("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
    builder = SparkSession.builder
    if under_spark_submit():
        from pyspark import SparkConf

        submitted = SparkConf()
        settings = {k: v for k, v in settings.items() if not submitted.contains(k)}
    else:
        if config.spark.master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode stays on loopback
        builder = builder.master(config.spark.master).appName(config.spark.app_name)
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
