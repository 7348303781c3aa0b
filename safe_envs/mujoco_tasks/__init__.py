"""The Safety-MuJoCo benchmark tasks (introduced with PCRPO), one task per module."""
