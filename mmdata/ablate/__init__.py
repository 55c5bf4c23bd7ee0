"""mmdata.ablate"""
