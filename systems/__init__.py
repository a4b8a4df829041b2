"""Systems for RAVE campaigns: model potentials and (later) ligand-cavity builders."""
