//! The paper's experiments (Figures 1 and 2) and a coverage study.
