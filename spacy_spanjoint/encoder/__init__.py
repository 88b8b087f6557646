"""Encoder variants on spacy-transformers: windows bounded by word pieces, case token
types, precision at training and prediction, quantization, and safe loading."""
