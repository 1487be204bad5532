"""The Data tab: choosing a source, previewing it, mapping arrays, the pre-flight checks."""
