"""The drop-in comparison: a corpus of notebooks run on ipykernel and on mpkernel, outputs
reduced to what a person sees and compared cell by cell (see docs/drop_in.md)."""
