"""Reading tabular files: one reader for CSV/TSV, Excel, SPSS, Stata and Parquet."""
